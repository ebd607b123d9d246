-- The chromium events of the log (Chrome trace event JSON), in log order; begin/end pairs are
-- made in Python, each payload parsed once.
SELECT CAST(p.text AS BLOB) AS event -- bytes: orjson reads them without a decode
FROM typed_envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.kind = 'chromium_event'
ORDER BY e.envelope_id
