-- The dynamo_guards pages of the output plan (the plan only numbers valid guard lists), with
-- the JSON list each one renders; all of them, or only output :number when it is given.
SELECT o.path, p.text AS payload
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
JOIN payloads p ON p.id = e.payload_id
WHERE o.log_id = :log_id AND o.mode = :mode AND o.parser = 'dynamo_guards'
  AND (:number IS NULL OR o.number = :number)
ORDER BY o.number
