-- Files a provenance page may read, in the order they were written: graph dumps, output code,
-- AOT wrapper code and node mappings (whatever their folder; the module matches folder names).
-- `path` is the file as written, which for output code depends on --plain-text.
SELECT o.number, o.kind, o.parser, o.envelope_id,
  CASE WHEN :plain AND o.path_plain IS NOT NULL THEN o.path_plain ELSE o.path END AS path
FROM outputs o
WHERE o.log_id = :log_id AND o.mode = 'default'
  AND (o.kind IN ('payload', 'reformat') OR o.parser = 'inductor_output_code')
  AND (instr(o.path, 'pre_grad_graph') OR instr(o.path, 'post_grad_graph')
    OR instr(o.path, 'inductor_output_code') OR instr(o.path, 'inductor_aot_wrapper_code')
    OR instr(o.path, 'inductor_provenance_tracking_node_mappings'))
ORDER BY o.number
