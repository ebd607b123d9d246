-- Everything the stack tries need, in one pass over the log's records (each pass reads every
-- record's metadata: three queries cost three), in log order:
-- * `start_stack`: a dynamo_start's stack, with `label` and `raw_key`, the compile id as
--   logged (attempt not normalized); every compile id tlparse could not read shares 'unknown'.
-- * `top_stack`: a stack at top level (an envelope logged outside any compile context).
-- * `has_metrics` with `metrics_key`, `failed`, `empty`, `restarted`: a compilation_metrics
--   record, for the trie colour of its compile id (module.py takes the worst of each key).
--   tlparse files metrics under the compile id with its attempt set to 0 whenever a
--   frame_compile_id is present, so a restart [0/0_1] colours [0/0], and a dynamo_start logged
--   without an attempt never finds its metrics. A missing restart list counts as a restart.
SELECT id,
       compile_id AS label,
       CASE WHEN compile_id = 'unknown' THEN 'unknown' ELSE compile_dir END AS raw_key,
       CASE WHEN json_type(metadata, '$.dynamo_start.stack') = 'array'
            THEN metadata -> '$.dynamo_start.stack' END AS start_stack,
       CASE WHEN json_type(metadata, '$.stack') = 'array'
            THEN metadata -> '$.stack' END AS top_stack,
       json_type(metadata, '$.compilation_metrics') = 'object' AS has_metrics,
       CASE
         WHEN compile_id = 'unknown' THEN 'unknown'
         WHEN frame_compile_id IS NOT NULL THEN printf('%s_%s_%s_0',
           ifnull(compiled_autograd_id, '-'), ifnull(frame_id, '-'), frame_compile_id)
         ELSE compile_dir
       END AS metrics_key,
       metadata ->> '$.compilation_metrics.fail_type' IS NOT NULL AS failed,
       ifnull(metadata ->> '$.compilation_metrics.graph_op_count', 0) = 0 AS empty,
       CASE json_type(metadata, '$.compilation_metrics.restart_reasons')
         WHEN 'array' THEN json_array_length(metadata, '$.compilation_metrics.restart_reasons') > 0
         ELSE 1
       END AS restarted
FROM records
WHERE log_id = :log_id
  AND (json_type(metadata, '$.dynamo_start.stack') = 'array'
       OR json_type(metadata, '$.stack') = 'array'
       OR json_type(metadata, '$.compilation_metrics') = 'object')
ORDER BY id
