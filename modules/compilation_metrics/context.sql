-- What a compilation metrics page shows besides the metrics, in log order: dynamo_start stacks,
-- symbolic shape specializations, guards added fast, and created and unbacked symbols.
-- `raw_key` is the compile id exactly as logged ('unknown' for unreadable ids), which is how
-- tlparse files the first three; `symbol_key` is how its later versions file symbols: the same,
-- but with a missing attempt read as 0 when a frame_compile_id is present.
SELECT id,
       CASE WHEN compile_id = 'unknown' THEN 'unknown' ELSE compile_dir END AS raw_key,
       CASE
         WHEN compile_id = 'unknown' THEN 'unknown'
         WHEN frame_compile_id IS NOT NULL THEN printf('%s_%s_%s_%s',
           ifnull(compiled_autograd_id, '-'), ifnull(frame_id, '-'), frame_compile_id,
           ifnull(attempt, 0))
         ELSE compile_dir
       END AS symbol_key,
       CASE WHEN json_type(metadata, '$.dynamo_start.stack') = 'array'
            THEN metadata -> '$.dynamo_start.stack' END AS start_stack,
       CASE WHEN json_type(metadata, '$.symbolic_shape_specialization') = 'object'
            THEN metadata -> '$.symbolic_shape_specialization' END AS specialization,
       CASE WHEN json_type(metadata, '$.guard_added_fast') = 'object'
            THEN metadata -> '$.guard_added_fast' END AS guard,
       CASE WHEN json_type(metadata, '$.create_symbol') = 'object'
            THEN metadata -> '$.create_symbol' END AS created_symbol,
       CASE WHEN json_type(metadata, '$.create_unbacked_symbol') = 'object'
            THEN metadata -> '$.create_unbacked_symbol' END AS unbacked_symbol
FROM records
WHERE log_id = :log_id
  AND (json_type(metadata, '$.dynamo_start.stack') = 'array'
       OR json_type(metadata, '$.symbolic_shape_specialization') = 'object'
       OR json_type(metadata, '$.guard_added_fast') = 'object'
       OR json_type(metadata, '$.create_symbol') = 'object'
       OR json_type(metadata, '$.create_unbacked_symbol') = 'object')
ORDER BY id
