-- Restarts and failures of every compilation_metrics page, in log order.
SELECT o.path, o.compile_id,
       e.metadata -> '$.compilation_metrics.restart_reasons' AS restart_reasons,
       e.metadata ->> '$.compilation_metrics.fail_type' AS fail_type,
       e.metadata ->> '$.compilation_metrics.fail_reason' AS fail_reason,
       e.metadata ->> '$.compilation_metrics.fail_user_frame_filename' AS fail_filename,
       e.metadata ->> '$.compilation_metrics.fail_user_frame_lineno' AS fail_lineno
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
WHERE o.log_id = :log_id AND o.mode = :mode AND o.parser = 'compilation_metrics'
ORDER BY o.number
