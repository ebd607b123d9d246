-- Compile ids of accepted envelopes with their parts, in order of first appearance. The module
-- turns each into tlparse's provenance directory name (normalized folder form, or "(unknown)"
-- when the compile id was unreadable).
SELECT compile_id = 'unknown' AS unknown,
  CASE WHEN compile_id = 'unknown' THEN NULL ELSE compiled_autograd_id END AS compiled_autograd_id,
  CASE WHEN compile_id = 'unknown' THEN NULL ELSE frame_id END AS frame_id,
  CASE WHEN compile_id = 'unknown' THEN NULL ELSE frame_compile_id END AS frame_compile_id,
  CASE WHEN compile_id = 'unknown' THEN NULL ELSE attempt END AS attempt
FROM envelopes
WHERE log_id = :log_id AND status = 'ok'
GROUP BY 1, 2, 3, 4, 5
ORDER BY min(id)
