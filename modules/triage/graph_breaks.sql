-- The graph break reports of the log (dynamo_graph_break_reason artifacts), in log order.
SELECT envelope_id, compile_id, line, payload
FROM artifact_envelopes
WHERE log_id = :log_id AND name = 'dynamo_graph_break_reason'
ORDER BY envelope_id
