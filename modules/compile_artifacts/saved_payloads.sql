-- Payloads no parser saved as a file: tlparse writes them to payloads/{has_payload}.txt.
SELECT e.has_payload, p.text AS payload
FROM envelopes e
JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status = 'ok' AND e.kind IS NOT 'chromium_event' AND p.size > 0
  AND NOT EXISTS (
    SELECT 1 FROM outputs o
    WHERE o.envelope_id = e.id AND o.mode = :mode
      AND (o.kind IN ('payload', 'reformat') OR (:plain AND o.path_plain IS NOT NULL))
  )
ORDER BY e.id
