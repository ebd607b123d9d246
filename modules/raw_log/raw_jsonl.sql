-- Envelopes that go to raw.jsonl (JSON objects, not string-table or chromium lines), with the
-- file that holds each one's payload (the metadata as UTF-8 bytes: orjson reads them as they are).
SELECT e.header, CAST(e.metadata AS BLOB) AS metadata, e.status, e.has_payload,
  p.size AS payload_size,
  (SELECT CASE WHEN :plain AND o.path_plain IS NOT NULL THEN o.path_plain ELSE o.path END
   FROM outputs o
   WHERE o.envelope_id = e.id AND o.mode = 'default'
     AND (o.kind IN ('payload', 'reformat') OR (:plain AND o.path_plain IS NOT NULL))
   ORDER BY o.number DESC LIMIT 1) AS payload_file
FROM envelopes e
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status IN ('ok', 'other_rank', 'bad_type')
  AND e.kind IS NOT 'chromium_event'
ORDER BY e.id
