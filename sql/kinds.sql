-- Typed views, one per envelope kind PyTorch 2.8-2.14 writes: the fields of each kind as
-- columns, over the raw `envelopes` rows (which stay the source of truth).
-- Each view is documented in datasette_metadata.yml.

-- Every accepted compilation_metrics envelope with the fields tlparse models as columns.
CREATE VIEW compilation_metrics AS
SELECT e.id AS envelope_id, e.log_id, e.line, e.compile_id,
       e.metadata ->> '$.compilation_metrics.co_name' AS co_name,
       e.metadata ->> '$.compilation_metrics.co_filename' AS co_filename,
       e.metadata ->> '$.compilation_metrics.co_firstlineno' AS co_firstlineno,
       e.metadata ->> '$.compilation_metrics.fail_type' AS fail_type,
       e.metadata ->> '$.compilation_metrics.fail_reason' AS fail_reason,
       e.metadata ->> '$.compilation_metrics.entire_frame_compile_time_s' AS entire_frame_compile_time_s,
       e.metadata ->> '$.compilation_metrics.backend_compile_time_s' AS backend_compile_time_s,
       e.metadata ->> '$.compilation_metrics.graph_op_count' AS graph_op_count
FROM envelopes e
WHERE e.status = 'ok' AND e.kind = 'compilation_metrics';
