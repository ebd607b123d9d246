-- Payloads of accepted chromium_event envelopes, in log order.
SELECT CAST(p.text AS BLOB) AS payload -- bytes: orjson reads them without a decode
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status = 'ok' AND e.kind = 'chromium_event'
ORDER BY e.id
