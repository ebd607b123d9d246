-- Envelopes the export report replays, in log order: the ones tlparse reads that carry an
-- export key (as their kind or beside it), and the ones it rejects as mistyped (bad_type), with
-- the numbered pages the central plan gave each (a JSON object: parser -> path).
WITH pages AS (
  SELECT envelope_id, json_group_object(parser, path) AS pages
  FROM outputs
  WHERE log_id = :log_id AND mode = 'export'
    AND parser IN ('guard_added', 'propagate_real_tensors_provenance')
  GROUP BY envelope_id
)
SELECT e.id, e.line, e.status, e.compile_dir, e.metadata, p.pages
FROM envelopes e
LEFT JOIN pages p ON p.envelope_id = e.id
WHERE e.log_id = :log_id AND e.status IN ('ok', 'bad_type')
  AND (
    e.kind IN ('guard_added', 'propagate_real_tensors_provenance', 'missing_fake_kernel',
               'mismatched_fake_kernel', 'expression_created', 'create_unbacked_symbol')
    OR instr(e.metadata, '"guard_added"') OR instr(e.metadata, '"propagate_real_tensors_provenance"')
    OR instr(e.metadata, '_fake_kernel"') OR instr(e.metadata, '"expression_created"')
    OR instr(e.metadata, '"create_unbacked_symbol"')
  )
ORDER BY e.id
