-- Payloads of accepted chromium_event envelopes: ranks ascending, then log order.
SELECT e.rank, p.text AS payload
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.status = 'ok' AND e.kind = 'chromium_event'
ORDER BY e.rank, e.id
