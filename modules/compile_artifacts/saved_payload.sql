-- The text of one saved payload (an envelope of saved_payload_keys.sql).
SELECT CAST(p.text AS BLOB) AS payload
FROM envelopes e
JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.id = :envelope_id
