-- One output row of files.sql, by its number, with its payload.
SELECT o.number, o.kind, o.parser, o.path, o.path_plain, o.readable_path, CAST(p.text AS BLOB) AS payload
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE o.log_id = :log_id AND o.mode = :mode AND o.number = :number
