-- Payloads no parser saved as a file: tlparse writes them to payloads/{has_payload}.txt.
-- Without :with_text only their names (`tldb serve` lists them before making any).
SELECT e.id AS envelope_id, e.has_payload, CASE WHEN :with_text THEN CAST(p.text AS BLOB) END AS payload
FROM envelopes e
JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status = 'ok' AND e.kind IS NOT 'chromium_event' AND p.size > 0
  AND NOT EXISTS (
    SELECT 1 FROM outputs o
    WHERE o.envelope_id = e.id AND o.mode = :mode
      AND (o.kind IN ('payload', 'reformat') OR (:plain AND o.path_plain IS NOT NULL))
  )
  -- This render's part (see Module.shards), by the file name, so that envelopes declaring the
  -- same md5 write their file in one process, in log order.
  AND ifnull(unicode(substr(e.has_payload, -1)), 0) % :parts = :part
ORDER BY e.id
