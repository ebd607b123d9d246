-- Envelopes with a top-level `stack` (logged outside any compile context), in log order.
SELECT metadata -> '$.stack' AS stack
FROM records
WHERE log_id = :log_id AND json_type(metadata, '$.stack') = 'array'
ORDER BY id
