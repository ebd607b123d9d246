-- dynamo_start stacks with the raw compile id of each start, in log order.
SELECT compiled_autograd_id, frame_id, frame_compile_id, attempt,
       metadata -> '$.dynamo_start.stack' AS stack
FROM envelopes
WHERE log_id = :log_id AND status = 'ok' AND kind = 'dynamo_start'
  AND metadata -> '$.dynamo_start.stack' IS NOT NULL
ORDER BY id
