-- The metrics pages of the output plan, in number (= log) order, with their envelope.
-- `lookup_key` is the compile id tlparse looks related records up with: the id as logged, with
-- its attempt set to 0 whenever a frame_compile_id is present ('unknown' for unreadable ids);
-- `symbol_key` the one created and unbacked symbols are looked up with (see context.sql).
SELECT o.number, o.parser, o.path, o.compile_id, o.compile_dir, e.id AS envelope_id, e.metadata,
       CASE
         WHEN e.compile_id = 'unknown' THEN 'unknown'
         WHEN e.frame_compile_id IS NOT NULL THEN printf('%s_%s_%s_0',
           ifnull(e.compiled_autograd_id, '-'), ifnull(e.frame_id, '-'), e.frame_compile_id)
         ELSE e.compile_dir
       END AS lookup_key,
       CASE
         WHEN e.compile_id = 'unknown' THEN 'unknown'
         WHEN e.frame_compile_id IS NOT NULL THEN printf('%s_%s_%s_%s',
           ifnull(e.compiled_autograd_id, '-'), ifnull(e.frame_id, '-'), e.frame_compile_id,
           ifnull(e.attempt, 0))
         ELSE e.compile_dir
       END AS symbol_key
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
WHERE o.log_id = :log_id AND o.mode = :mode
  AND o.parser IN (
    'compilation_metrics', 'bwd_compilation_metrics', 'aot_autograd_backward_compilation_metrics'
  )
ORDER BY o.number
