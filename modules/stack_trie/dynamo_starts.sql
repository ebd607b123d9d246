-- dynamo_start envelopes that carry a stack, in log order. `raw_key` names the compile id as
-- logged (attempt not normalized); every compile id tlparse could not read shares 'unknown'.
SELECT id,
       compile_id AS label,
       CASE WHEN compile_id = 'unknown' THEN 'unknown' ELSE compile_dir END AS raw_key,
       metadata -> '$.dynamo_start.stack' AS stack
FROM records
WHERE log_id = :log_id AND json_type(metadata, '$.dynamo_start.stack') = 'array'
ORDER BY id
