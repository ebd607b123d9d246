-- Export entries tlparse 0.4.3 reads but never shows: data-dependent errors as raised, real
-- tensor propagation results, and the start-of-export marker (its payload, shortened).
SELECT e.line, e.kind, e.metadata, substr(p.text, 1, 200) AS payload
FROM envelopes e
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status = 'ok'
  AND e.kind IN ('guard_on_data_dependent_error', 'propagate_real_tensors', 'export')
ORDER BY e.id
