-- Each rank's compile ids, as its compile_directory.json lists them (without `unknown`).
SELECT rank, compile_id
FROM envelopes
WHERE status = 'ok' AND compile_id IS NOT NULL AND compile_id <> 'unknown'
GROUP BY rank, compile_id
ORDER BY rank, compile_id
