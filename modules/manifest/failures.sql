-- Failures and restarts recorded by compilation_metrics envelopes, in log order.
SELECT compile_id,
       metadata ->> '$.compilation_metrics.fail_type' AS fail_type,
       metadata ->> '$.compilation_metrics.fail_reason' AS fail_reason,
       json(metadata -> '$.compilation_metrics.restart_reasons') AS restart_reasons
FROM envelopes
WHERE log_id = :log_id AND status = 'ok' AND kind = 'compilation_metrics'
ORDER BY id
