-- What a compilation metrics page shows besides the metrics, in log order: dynamo_start stacks,
-- symbolic shape specializations and guards added fast. `raw_key` is the compile id exactly as
-- logged ('unknown' for unreadable ids), which is how tlparse files these records.
SELECT id,
       CASE WHEN compile_id = 'unknown' THEN 'unknown' ELSE compile_dir END AS raw_key,
       CASE WHEN json_type(metadata, '$.dynamo_start.stack') = 'array'
            THEN metadata -> '$.dynamo_start.stack' END AS start_stack,
       CASE WHEN json_type(metadata, '$.symbolic_shape_specialization') = 'object'
            THEN metadata -> '$.symbolic_shape_specialization' END AS specialization,
       CASE WHEN json_type(metadata, '$.guard_added_fast') = 'object'
            THEN metadata -> '$.guard_added_fast' END AS guard
FROM records
WHERE log_id = :log_id
  AND (json_type(metadata, '$.dynamo_start.stack') = 'array'
       OR json_type(metadata, '$.symbolic_shape_specialization') = 'object'
       OR json_type(metadata, '$.guard_added_fast') = 'object')
ORDER BY id
