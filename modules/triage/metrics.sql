-- Compilation metrics of the log (forward, backward, runtime), with the frame they belong to.
-- All fields come as one JSON object (`fields`), parsed once in Python: asking the view for
-- thirty columns would parse each record, config strings included, thirty times.
SELECT m.envelope_id, m.kind, m.compile_id, e.frame_id, e.frame_compile_id,
       e.compiled_autograd_id, m.line, m.fields
FROM compilation_metrics m JOIN envelopes e ON e.id = m.envelope_id
WHERE m.log_id = :log_id
ORDER BY m.envelope_id
