-- Payloads of accepted chromium_event envelopes, in log order; run on each rank's own database
-- (the combined database does not keep these texts: see sql/combined_payloads.sql).
SELECT p.text AS payload
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.status = 'ok' AND e.kind = 'chromium_event'
ORDER BY e.id
