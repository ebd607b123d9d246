-- The trie colour of each compile id that has compilation_metrics. tlparse files metrics under
-- the compile id with its attempt set to 0 whenever a frame_compile_id is present, so a restart
-- [0/0_1] colours [0/0], and a dynamo_start logged without an attempt never finds its metrics.
-- Worst first: any failure, then any empty graph, then any restart (a missing list counts).
WITH metrics AS (
  SELECT CASE
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
  WHERE log_id = :log_id AND json_type(metadata, '$.compilation_metrics') = 'object'
)
SELECT metrics_key,
       CASE
         WHEN max(failed) THEN 'status-error'
         WHEN max(empty) THEN 'status-empty'
         WHEN max(restarted) THEN 'status-break'
         ELSE 'status-ok'
       END AS status
FROM metrics
GROUP BY metrics_key
