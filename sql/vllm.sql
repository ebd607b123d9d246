-- Typed views of vLLM's envelopes (vLLM logs them through torch's structured trace when it
-- compiles a model): one view per kind, in the style of kinds.sql (the same first columns),
-- applied after it. Payload fields are read only from payloads that are JSON (json_valid), so
-- a malformed payload gives NULL columns, never a failing query. Described in
-- datasette_metadata.yml; the canned queries vllm_subgraphs_per_range and
-- vllm_pass_diffs_per_subgraph read them.
--
-- compile_call numbers vLLM's compile calls (1, 2, ...) the way the report's summary does: a
-- call starts at each vllm_compilation_config envelope (the summary also skips configurations
-- whose fields have the wrong JSON type; this count does not).

-- The vLLM envelopes with their JSON payload (doc) and the number of configurations up to
-- them (configs_seen), shared by the views below.
CREATE VIEW vllm_envelopes AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.artifact.name' AS artifact, e.metadata ->> '$.graph_dump.name' AS dump,
       CASE WHEN json_valid(p.text) THEN p.text END AS doc, p.size AS payload_bytes,
       p.text AS payload,
       (SELECT count(*) FROM envelopes c
        WHERE c.log_id = e.log_id AND c.id <= e.envelope_id AND c.status = 'ok'
          AND c.kind = 'artifact'
          AND c.metadata ->> '$.artifact.name' = 'vllm_compilation_config') AS configs_seen
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE (e.kind = 'artifact'
       AND e.metadata ->> '$.artifact.name' IN ('vllm_compilation_config',
                                                'vllm_piecewise_compile_start',
                                                'vllm_compile_event'))
   OR (e.kind = 'graph_dump' AND e.metadata ->> '$.graph_dump.name' GLOB 'vllm_*');

-- vllm_compilation_config: the configuration of each compile call, one column per field.
-- compile_ranges_split_points is filled from compile_ranges_endpoints (its newer name).
CREATE VIEW vllm_compilation_configs AS
SELECT envelope_id, log_id, line, status, kind, compile_id, rank, subgraph_name,
       max(configs_seen, 1) AS compile_call,
       doc ->> '$.model' AS model, doc ->> '$.prefix' AS prefix, doc ->> '$.mode' AS mode,
       doc ->> '$.backend' AS backend, doc ->> '$.custom_ops' AS custom_ops,
       doc ->> '$.splitting_ops' AS splitting_ops, doc ->> '$.cudagraph_mode' AS cudagraph_mode,
       doc ->> '$.compile_sizes' AS compile_sizes,
       coalesce(doc ->> '$.compile_ranges_split_points', doc ->> '$.compile_ranges_endpoints')
           AS compile_ranges_split_points,
       doc ->> '$.use_inductor_graph_partition' AS use_inductor_graph_partition,
       doc ->> '$.inductor_passes' AS inductor_passes,
       doc ->> '$.enabled_passes' AS enabled_passes,
       doc ->> '$.dynamic_shapes_type' AS dynamic_shapes_type,
       doc ->> '$.dynamic_shapes_evaluate_guards' AS dynamic_shapes_evaluate_guards,
       payload
FROM vllm_envelopes
WHERE artifact = 'vllm_compilation_config';

-- vllm_piecewise_compile_start: one piecewise compile of a submodule, for a compile range or
-- one size; group is the summary's heading (`size 8`, `range [1, 8192]`).
CREATE VIEW vllm_piecewise_compiles AS
SELECT envelope_id, log_id, line, status, kind, compile_id, rank, subgraph_name,
       max(configs_seen, 1) AS compile_call,
       doc ->> '$.piecewise_index' AS piecewise_index,
       coalesce(doc ->> '$.submod_name', 'subgraph_' || (doc ->> '$.piecewise_index'))
           AS subgraph,
       doc ->> '$.compile_range_start' AS compile_range_start,
       doc ->> '$.compile_range_end' AS compile_range_end,
       doc ->> '$.is_single_size' AS is_single_size,
       doc ->> '$.is_cudagraph_capture_size' AS is_cudagraph_capture_size,
       doc ->> '$.total_piecewise_compiles' AS total_piecewise_compiles,
       CASE WHEN doc ->> '$.is_single_size' THEN 'size ' || (doc ->> '$.compile_range_start')
            ELSE 'range [' || (doc ->> '$.compile_range_start') || ', '
                 || (doc ->> '$.compile_range_end') || ']' END AS size_or_range
FROM vllm_envelopes
WHERE artifact = 'vllm_piecewise_compile_start';

-- vllm_compile_event: what vLLM did for a compile call (fresh_compile, aot_cache_hit...);
-- it comes before the configuration of the call it is about.
CREATE VIEW vllm_compile_events AS
SELECT envelope_id, log_id, line, status, kind, compile_id, rank, subgraph_name,
       doc ->> '$.type' AS event_type, configs_seen + 1 AS for_compile_call, payload
FROM vllm_envelopes
WHERE artifact = 'vllm_compile_event';

-- Graph dumps of vLLM's piecewise backend: the split graph and each submodule as compiled
-- (vllm_submod_N, vllm_subgraph_*), with the piecewise compile they belong to (the latest
-- compile start before them, NULL for the split graph).
CREATE VIEW vllm_graphs AS
SELECT v.envelope_id, v.log_id, v.line, v.status, v.kind, v.compile_id, v.rank,
       v.subgraph_name, max(v.configs_seen, 1) AS compile_call, v.dump AS name,
       (SELECT max(s.envelope_id) FROM vllm_envelopes s
        WHERE s.log_id = v.log_id AND s.envelope_id < v.envelope_id
          AND s.artifact = 'vllm_piecewise_compile_start'
          AND v.dump <> 'vllm_piecewise_split_graph') AS compile_start_id,
       v.payload_bytes, v.payload
FROM vllm_envelopes v
WHERE v.dump = 'vllm_piecewise_split_graph' OR v.dump GLOB 'vllm_submod_*'
   OR v.dump GLOB 'vllm_subgraph_*';

-- vllm_post_grad.<idx>.<Pass>: the graph after each Inductor post-grad pass, with its diff
-- page in the report (when it had a baseline) and the piecewise compile it belongs to.
CREATE VIEW vllm_pass_graphs AS
SELECT v.envelope_id, v.log_id, v.line, v.status, v.kind, v.compile_id, v.rank,
       v.subgraph_name, max(v.configs_seen, 1) AS compile_call,
       CAST(substr(v.dump, 16, instr(substr(v.dump, 16), '.') - 1) AS INTEGER) AS pass_index,
       substr(substr(v.dump, 16), instr(substr(v.dump, 16), '.') + 1) AS pass_name,
       (SELECT max(s.envelope_id) FROM vllm_envelopes s
        WHERE s.log_id = v.log_id AND s.envelope_id < v.envelope_id
          AND s.artifact = 'vllm_piecewise_compile_start') AS compile_start_id,
       (SELECT o.path FROM outputs o
        WHERE o.envelope_id = v.envelope_id AND o.mode = 'default' AND o.kind = 'payload')
           AS graph_file,
       (SELECT o.path FROM outputs o
        WHERE o.envelope_id = v.envelope_id AND o.mode = 'default' AND o.kind = 'global')
           AS diff_page,
       v.payload_bytes, v.payload
FROM vllm_envelopes v
WHERE v.dump GLOB 'vllm_post_grad.*';

-- vllm_patterns.<Pass>: the pattern-matcher source of a pass (written as a .py file).
CREATE VIEW vllm_patterns AS
SELECT v.envelope_id, v.log_id, v.line, v.status, v.kind, v.compile_id, v.rank,
       v.subgraph_name, max(v.configs_seen, 1) AS compile_call, substr(v.dump, 15) AS pass_name,
       (SELECT o.path FROM outputs o
        WHERE o.envelope_id = v.envelope_id AND o.mode = 'default' AND o.kind = 'payload')
           AS pattern_file,
       v.payload_bytes, v.payload
FROM vllm_envelopes v
WHERE v.dump GLOB 'vllm_patterns.*';
