-- Payloads of accepted chromium_event envelopes, in log order.
SELECT p.text AS payload
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status = 'ok' AND e.kind = 'chromium_event'
ORDER BY e.id
