-- recompile_reasons artifacts: why each earlier compile of the frame could not be reused.
SELECT a.compile_id, e.frame_id, a.payload
FROM artifact_envelopes a JOIN envelopes e ON e.id = a.envelope_id
WHERE a.log_id = :log_id AND a.name = 'recompile_reasons'
ORDER BY a.envelope_id
