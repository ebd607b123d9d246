-- The payload of one envelope ('' when it has none).
SELECT coalesce(p.text, '') AS text
FROM envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.id = :envelope_id
