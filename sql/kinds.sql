-- Typed views, one per envelope kind PyTorch 2.8-2.14 writes: the fields of each kind as
-- columns, over the raw `envelopes` rows (which stay the source of truth). Applied after
-- views.sql. Plain SQLite 3.40: JSON1 and ->> on the metadata text, no jsonb.
-- Each view is documented in datasette_metadata.yml.
--
-- Every typed view starts with the same columns: envelope_id, log_id, line, status (what
-- tlparse 0.4.3 made of the line: ok, other_rank, bad_type, ...; lines whose JSON did not parse
-- are left out), kind, compile_id, rank (the envelope's rank key) and subgraph_name (the
-- regional-Inductor subgraph an envelope was logged in, torch 2.13+).

-- The one list of envelope kinds tldb recognises: each kind (a GLOB pattern for the names torch
-- computes at run time) with the typed view that holds its fields. A kind that matches no row
-- here is listed by unrecognised_kinds and in the report's "Envelope kinds" section.
CREATE VIEW envelope_catalogue AS
SELECT column1 AS kind, column2 AS typed_view, column3 AS area, column4 AS dtrace_only,
       column5 AS tlparse
FROM (VALUES
    ('str', 'interned_strings', 'logging', 0, 'handled'),
    ('stack', 'dynamo_starts', 'logging', 0, 'handled'),
    ('dynamo_start', 'dynamo_starts', 'dynamo', 0, 'handled'),
    ('dynamo_output_graph', 'graphs', 'dynamo', 0, 'handled'),
    ('optimize_ddp_split_graph', 'graphs', 'dynamo', 0, 'handled'),
    ('optimize_ddp_split_child', 'graphs', 'dynamo', 0, 'handled'),
    ('compiled_autograd_graph', 'graphs', 'compiled autograd', 0, 'handled'),
    ('dynamo_guards', 'guard_dumps', 'dynamo', 0, 'handled'),
    ('dynamo_cpp_guards_str', 'guard_dumps', 'dynamo', 0, 'handled'),
    ('aot_joint_graph', 'graphs', 'aot_autograd', 0, 'handled'),
    ('aot_forward_graph', 'graphs', 'aot_autograd', 0, 'handled'),
    ('aot_backward_graph', 'graphs', 'aot_autograd', 0, 'handled'),
    ('aot_inference_graph', 'graphs', 'aot_autograd', 0, 'handled'),
    ('aot_forward_graph_pre_saved_tensors_hooks', 'graphs', 'aot_autograd', 0, 'ignored'),
    ('aot_backward_graph_pre_saved_tensors_hooks', 'graphs', 'aot_autograd', 0, 'ignored'),
    ('aot_forward_graph_pre_assert_saved_tensors_hooks', 'graphs', 'aot_autograd', 0, 'ignored'),
    ('aot_backward_graph_pre_assert_saved_tensors_hooks', 'graphs', 'aot_autograd', 0, 'ignored'),
    ('aot_saved_tensors_hooks_pack *', 'graphs', 'aot_autograd', 0, 'ignored'),
    ('aot_saved_tensors_hooks_unpack *', 'graphs', 'aot_autograd', 0, 'ignored'),
    ('inductor_pre_grad_graph', 'graphs', 'inductor', 0, 'handled'),
    ('inductor_post_grad_graph', 'graphs', 'inductor', 0, 'handled'),
    ('inductor_output_code', 'output_code', 'inductor', 0, 'handled'),
    ('graph_dump', 'output_code', 'inductor', 0, 'handled'),
    ('compilation_metrics', 'compilation_metrics', 'metrics', 0, 'handled'),
    ('bwd_compilation_metrics', 'compilation_metrics', 'metrics', 0, 'handled'),
    ('compilation_metrics_runtime', 'compilation_metrics', 'metrics', 0, 'ignored'),
    ('bwd_compilation_metrics_runtime', 'compilation_metrics', 'metrics', 0, 'ignored'),
    ('aot_autograd_backward_compilation_metrics', 'compilation_metrics', 'metrics', 0, 'handled'),
    ('chromium_event', 'trace_events', 'timing', 0, 'handled'),
    ('artifact', 'artifact_envelopes', 'artifacts', 0, 'handled'),
    ('link', 'links', 'artifacts', 0, 'handled'),
    ('dump_file', 'dump_files', 'artifacts', 0, 'handled'),
    ('describe_storage', 'storage_descriptions', 'fake tensors', 0, 'handled'),
    ('describe_tensor', 'tensor_descriptions', 'fake tensors', 0, 'handled'),
    ('describe_source', 'tensor_sources', 'fake tensors', 0, 'handled'),
    ('symbolic_shape_specialization', 'shape_env_events', 'symbolic shapes', 0, 'handled'),
    ('create_symbol', 'shape_env_events', 'symbolic shapes', 0, 'ignored'),
    ('create_unbacked_symbol', 'shape_env_events', 'symbolic shapes', 0, 'export mode'),
    ('guard_added_fast', 'shape_env_events', 'symbolic shapes', 0, 'handled'),
    ('guard_added', 'shape_env_events', 'symbolic shapes', 1, 'export mode'),
    ('propagate_real_tensors', 'shape_env_events', 'symbolic shapes', 0, 'ignored'),
    ('propagate_real_tensors_provenance', 'shape_env_events', 'symbolic shapes', 1,
     'export mode'),
    ('guard_on_data_dependent_error', 'shape_env_events', 'symbolic shapes', 1, 'ignored'),
    ('expression_created', 'shape_env_events', 'symbolic shapes', 1, 'export mode'),
    ('missing_fake_kernel', 'fake_kernel_events', 'export', 1, 'export mode'),
    ('mismatched_fake_kernel', 'fake_kernel_events', 'export', 1, 'export mode'),
    ('export', 'export_events', 'export', 1, 'ignored'),
    ('exported_program', 'export_events', 'export', 1, 'handled')
);

-- Envelope kinds of each log that no catalogue row recognises, with counts: what a newer
-- PyTorch (or a third-party library) writes that tldb has no typed view for yet. The rows stay
-- in `envelopes`; this view only says they are there.
CREATE VIEW unrecognised_kinds AS
SELECT g.log_id, g.kind, g.envelopes, g.first_line, g.with_payload, g.a_compile_id
FROM (SELECT log_id, kind, count(*) AS envelopes, min(line) AS first_line,
             sum(payload_id IS NOT NULL) AS with_payload, min(compile_id) AS a_compile_id
      FROM envelopes
      WHERE kind IS NOT NULL AND status <> 'bad_json'
      GROUP BY log_id, kind) g
WHERE NOT EXISTS (SELECT 1 FROM envelope_catalogue c WHERE g.kind GLOB c.kind);

-- Every envelope whose JSON parsed, with the columns all typed views start with. The typed
-- views below select from it, one kind (or a family of kinds) each.
CREATE VIEW typed_envelopes AS
SELECT e.id AS envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id,
       e.metadata ->> '$.rank' AS rank, e.metadata ->> '$.subgraph_name' AS subgraph_name,
       e.metadata, e.payload_id
FROM envelopes e
WHERE e.status <> 'bad_json' AND e.kind IS NOT NULL;

-- `str` envelopes: the filename interning table as logged ([path, index]), one row each.
CREATE VIEW interned_strings AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.str[1]' AS idx, e.metadata ->> '$.str[0]' AS value
FROM typed_envelopes e
WHERE e.kind = 'str';

-- dynamo_start envelopes (where Dynamo began compiling a frame), and envelopes that carry
-- only a stack (logged without the compile id they should have had).
CREATE VIEW dynamo_starts AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       coalesce(e.metadata -> '$.dynamo_start.stack', e.metadata -> '$.stack') AS stack,
       json_array_length(coalesce(e.metadata -> '$.dynamo_start.stack',
                                  e.metadata -> '$.stack')) AS frames
FROM typed_envelopes e
WHERE e.kind IN ('dynamo_start', 'stack');

-- Every graph envelope: Dynamo's output graph, DDP split graphs, compiled-autograd graphs,
-- AOTAutograd's joint/forward/backward/inference graphs (and the saved-tensors-hooks ones),
-- Inductor's pre/post-grad graphs. `name` is the DDP child's name or the saved-tensors hook.
CREATE VIEW graphs AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       CASE WHEN e.kind = 'optimize_ddp_split_child'
                THEN e.metadata ->> '$.optimize_ddp_split_child.name'
            WHEN e.kind GLOB 'aot_saved_tensors_hooks_* *'
                THEN substr(e.kind, instr(e.kind, ' ') + 1) END AS name,
       e.metadata -> '$.dynamo_output_graph.sizes' AS sizes,
       p.size AS payload_bytes, p.text AS payload
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE (e.kind IN ('dynamo_output_graph', 'optimize_ddp_split_graph', 'optimize_ddp_split_child',
                  'compiled_autograd_graph', 'aot_joint_graph', 'aot_forward_graph',
                  'aot_backward_graph', 'aot_inference_graph', 'inductor_pre_grad_graph',
                  'inductor_post_grad_graph')
       OR e.kind GLOB 'aot_*_saved_tensors_hooks'
       OR e.kind GLOB 'aot_saved_tensors_hooks_pack *'
       OR e.kind GLOB 'aot_saved_tensors_hooks_unpack *');

-- The guards Dynamo installed for each compile, as dumped: the C++ guard manager tree
-- (dynamo_cpp_guards_str, ending with the measured guard latency) or the older JSON list
-- (dynamo_guards). The `guards` view splits them into one row per guard.
CREATE VIEW guard_dumps AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       CASE WHEN instr(p.text, 'Guard latency = ') > 0
            THEN CAST(substr(p.text, instr(p.text, 'Guard latency = ') + 16) AS REAL)
       END AS guard_latency_us,
       p.size AS payload_bytes, p.text AS payload
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.kind IN ('dynamo_guards', 'dynamo_cpp_guards_str');

-- Generated code: Inductor's wrapper module (inductor_output_code) and AOTInductor's C++
-- sources (graph_dump).
CREATE VIEW output_code AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.graph_dump.name' AS name,
       e.metadata ->> '$.graph_dump.type' AS type,
       coalesce(e.metadata ->> '$.inductor_output_code.filename',
                e.metadata ->> '$.graph_dump.filename') AS filename,
       e.metadata ->> '$.inductor_output_code.file_path' AS file_path,
       p.size AS payload_bytes, p.text AS payload
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.kind IN ('inductor_output_code', 'graph_dump');

-- Every compilation_metrics, bwd_compilation_metrics, compilation_metrics_runtime,
-- bwd_compilation_metrics_runtime (and legacy aot_autograd_backward_compilation_metrics)
-- envelope with every field of torch's CompilationMetrics (99 in 2.13/2.14) as a column.
-- The metrics' own compile_id field is metrics_compile_id; lists and dicts stay JSON text.
CREATE VIEW compilation_metrics AS
SELECT m.envelope_id, m.log_id, m.line, m.status, m.kind, m.compile_id, m.rank, m.subgraph_name,
       m.f ->> 'compile_id' AS metrics_compile_id,
       m.f ->> 'frame_key' AS frame_key,
       m.f ->> 'co_name' AS co_name,
       m.f ->> 'co_filename' AS co_filename,
       m.f ->> 'co_firstlineno' AS co_firstlineno,
       m.f ->> 'cache_size' AS cache_size,
       m.f ->> 'accumulated_cache_size' AS accumulated_cache_size,
       m.f ->> 'guard_count' AS guard_count,
       m.f ->> 'shape_env_guard_count' AS shape_env_guard_count,
       m.f ->> 'graph_op_count' AS graph_op_count,
       m.f ->> 'graph_node_count' AS graph_node_count,
       m.f ->> 'graph_input_count' AS graph_input_count,
       m.f ->> 'start_time' AS start_time,
       m.f ->> 'entire_frame_compile_time_s' AS entire_frame_compile_time_s,
       m.f ->> 'backend_compile_time_s' AS backend_compile_time_s,
       m.f ->> 'inductor_compile_time_s' AS inductor_compile_time_s,
       m.f ->> 'code_gen_time_s' AS code_gen_time_s,
       m.f ->> 'fail_type' AS fail_type,
       m.f ->> 'fail_reason' AS fail_reason,
       m.f ->> 'fail_user_frame_filename' AS fail_user_frame_filename,
       m.f ->> 'fail_user_frame_lineno' AS fail_user_frame_lineno,
       m.f ->> 'non_compliant_ops' AS non_compliant_ops,
       m.f ->> 'compliant_custom_ops' AS compliant_custom_ops,
       m.f ->> 'restart_reasons' AS restart_reasons,
       m.f ->> 'dynamo_time_before_restart_s' AS dynamo_time_before_restart_s,
       m.f ->> 'stack_trace' AS stack_trace,
       m.f ->> 'exception_stack_trace' AS exception_stack_trace,
       m.f ->> 'graph_node_shapes' AS graph_node_shapes,
       m.f ->> 'has_guarded_code' AS has_guarded_code,
       m.f ->> 'remote_cache_time_saved_s' AS remote_cache_time_saved_s,
       m.f ->> 'structured_logging_overhead_s' AS structured_logging_overhead_s,
       m.f ->> 'config_suppress_errors' AS config_suppress_errors,
       m.f ->> 'config_inline_inbuilt_nn_modules' AS config_inline_inbuilt_nn_modules,
       m.f ->> 'specialize_float' AS specialize_float,
       m.f ->> 'dynamo_config' AS dynamo_config,
       m.f ->> 'compiler_config' AS compiler_config,
       m.f ->> 'is_forward' AS is_forward,
       m.f ->> 'num_triton_bundles' AS num_triton_bundles,
       m.f ->> 'remote_fx_graph_cache_get_time_ms' AS remote_fx_graph_cache_get_time_ms,
       m.f ->> 'remote_fx_graph_cache_put_time_ms' AS remote_fx_graph_cache_put_time_ms,
       m.f ->> 'start_time_us' AS start_time_us,
       m.f ->> 'duration_us' AS duration_us,
       m.f ->> 'dynamo_cumulative_compile_time_us' AS dynamo_cumulative_compile_time_us,
       m.f ->> 'aot_autograd_cumulative_compile_time_us' AS aot_autograd_cumulative_compile_time_us,
       m.f ->> 'inductor_cumulative_compile_time_us' AS inductor_cumulative_compile_time_us,
       m.f ->> 'inductor_code_gen_cumulative_compile_time_us' AS inductor_code_gen_cumulative_compile_time_us,
       m.f ->> 'triton_compile_time_us' AS triton_compile_time_us,
       m.f ->> 'runtime_cudagraphify_time_us' AS runtime_cudagraphify_time_us,
       m.f ->> 'runtime_triton_autotune_time_us' AS runtime_triton_autotune_time_us,
       m.f ->> 'dynamo_compile_time_before_restart_us' AS dynamo_compile_time_before_restart_us,
       m.f ->> 'distributed_ephemeral_timeout_us' AS distributed_ephemeral_timeout_us,
       m.f ->> 'structured_logging_overhead_us' AS structured_logging_overhead_us,
       m.f ->> 'remote_fx_graph_cache_get_time_us' AS remote_fx_graph_cache_get_time_us,
       m.f ->> 'remote_fx_graph_cache_put_time_us' AS remote_fx_graph_cache_put_time_us,
       m.f ->> 'backward_cumulative_compile_time_us' AS backward_cumulative_compile_time_us,
       m.f ->> 'end_time_us' AS end_time_us,
       m.f ->> 'pre_grad_pass_time_us' AS pre_grad_pass_time_us,
       m.f ->> 'post_grad_pass_time_us' AS post_grad_pass_time_us,
       m.f ->> 'joint_graph_pass_time_us' AS joint_graph_pass_time_us,
       m.f ->> 'log_format_version' AS log_format_version,
       m.f ->> 'inductor_config' AS inductor_config,
       m.f ->> 'remote_cache_version' AS remote_cache_version,
       m.f ->> 'inductor_fx_remote_cache_hit_count' AS inductor_fx_remote_cache_hit_count,
       m.f ->> 'inductor_fx_remote_cache_miss_count' AS inductor_fx_remote_cache_miss_count,
       m.f ->> 'inductor_fx_remote_cache_backend_type' AS inductor_fx_remote_cache_backend_type,
       m.f ->> 'inductor_fx_remote_cache_hit_keys' AS inductor_fx_remote_cache_hit_keys,
       m.f ->> 'inductor_fx_remote_cache_miss_keys' AS inductor_fx_remote_cache_miss_keys,
       m.f ->> 'inductor_fx_local_cache_hit_count' AS inductor_fx_local_cache_hit_count,
       m.f ->> 'inductor_fx_local_cache_miss_count' AS inductor_fx_local_cache_miss_count,
       m.f ->> 'aotautograd_remote_cache_hit_count' AS aotautograd_remote_cache_hit_count,
       m.f ->> 'aotautograd_remote_cache_miss_count' AS aotautograd_remote_cache_miss_count,
       m.f ->> 'aotautograd_local_cache_hit_count' AS aotautograd_local_cache_hit_count,
       m.f ->> 'aotautograd_local_cache_miss_count' AS aotautograd_local_cache_miss_count,
       m.f ->> 'cuda_version' AS cuda_version,
       m.f ->> 'triton_version' AS triton_version,
       m.f ->> 'feature_usage' AS feature_usage,
       m.f ->> 'compile_time_autotune_time_us' AS compile_time_autotune_time_us,
       m.f ->> 'is_runtime' AS is_runtime,
       m.f ->> 'gc_time_us' AS gc_time_us,
       m.f ->> 'tensorify_float_attempt' AS tensorify_float_attempt,
       m.f ->> 'tensorify_float_success' AS tensorify_float_success,
       m.f ->> 'tensorify_float_failure' AS tensorify_float_failure,
       m.f ->> 'guard_latency_us' AS guard_latency_us,
       m.f ->> 'recompile_reason' AS recompile_reason,
       m.f ->> 'num_graph_breaks' AS num_graph_breaks,
       m.f ->> 'triton_kernel_compile_times_us' AS triton_kernel_compile_times_us,
       m.f ->> 'ir_count' AS ir_count,
       m.f ->> 'cudagraph_skip_reason' AS cudagraph_skip_reason,
       m.f ->> 'python_version' AS python_version,
       m.f ->> 'pgo_put_remote_code_state_time_us' AS pgo_put_remote_code_state_time_us,
       m.f ->> 'pgo_get_remote_code_state_time_us' AS pgo_get_remote_code_state_time_us,
       m.f ->> 'param_numel' AS param_numel,
       m.f ->> 'param_bytes' AS param_bytes,
       m.f ->> 'param_count' AS param_count,
       m.f ->> 'recompile_user_contexts' AS recompile_user_contexts,
       m.f ->> 'inline_inbuilt_nn_modules_candidate' AS inline_inbuilt_nn_modules_candidate,
       m.f ->> 'pytorch_version' AS pytorch_version,
       m.f ->> 'inductor_provenance' AS inductor_provenance,
       m.f ->> 'functorch_config' AS functorch_config,
       m.f ->> 'elapsed_time' AS elapsed_time,
       m.f AS fields
FROM (SELECT e.*, e.metadata -> ('$.' || e.kind) AS f
      FROM typed_envelopes e
      WHERE e.kind IN ('compilation_metrics', 'bwd_compilation_metrics',
                       'compilation_metrics_runtime', 'bwd_compilation_metrics_runtime',
                       'aot_autograd_backward_compilation_metrics')) m;

-- chromium_event envelopes: one Chrome trace event each (B/E begin and end, i instant, X
-- complete), times in µs. chromium_spans pairs B with E.
CREATE VIEW trace_events AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       p.text ->> 'name' AS name, p.text ->> 'ph' AS ph, p.text ->> 'cat' AS cat,
       p.text ->> 'ts' AS ts, p.text ->> 'dur' AS dur, p.text ->> 'pid' AS pid,
       p.text ->> 'tid' AS tid, p.text ->> 's' AS scope,
       p.text ->> '$.args.compile_id' AS event_compile_id,
       json(p.text -> 'args') AS args
FROM typed_envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.kind = 'chromium_event'
  AND json_valid(p.text) AND json_type(p.text) = 'object';

-- artifact envelopes: named payloads (graph break reasons, recompile reasons, cache entries,
-- pass graphs, bytecode...), with the name and encoding the log gives.
CREATE VIEW artifact_envelopes AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.artifact.name' AS name,
       e.metadata ->> '$.artifact.encoding' AS encoding,
       e.metadata ->> '$.artifact.verbosity' AS verbosity,
       e.metadata ->> '$.artifact.lowering_name' AS lowering_name,
       p.size AS payload_bytes, p.text AS payload
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.kind = 'artifact';

-- link envelopes (a name and a URL, e.g. a profile of the compile).
CREATE VIEW links AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.link.name' AS name, e.metadata ->> '$.link.url' AS url
FROM typed_envelopes e
WHERE e.kind = 'link';

-- dump_file envelopes: the source of FX-generated modules (eval_with_key_N) stack frames
-- point into.
CREATE VIEW dump_files AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.dump_file.name' AS name,
       p.size AS payload_bytes, p.text AS payload
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.kind = 'dump_file';

-- describe_storage envelopes: the storages behind fake tensors (size is a number, or an
-- expression text when symbolic).
CREATE VIEW storage_descriptions AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.describe_storage.id' AS id,
       e.metadata ->> '$.describe_storage.describer_id' AS describer_id,
       e.metadata ->> '$.describe_storage.size' AS size,
       e.metadata ->> '$.describe_storage.size_hint' AS size_hint
FROM typed_envelopes e
WHERE e.kind = 'describe_storage';

-- describe_tensor envelopes: the tensors Dynamo turned into fake tensors. torch writes only
-- the fields that differ from their defaults; the most useful are columns, all are in fields.
CREATE VIEW tensor_descriptions AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.f ->> 'id' AS id, e.f ->> 'describer_id' AS describer_id, e.f ->> 'ndim' AS ndim,
       e.f ->> 'dtype' AS dtype, e.f ->> 'device' AS device, e.f ->> 'size' AS size,
       e.f ->> 'stride' AS stride, e.f ->> 'storage' AS storage,
       e.f ->> 'storage_offset' AS storage_offset, e.f ->> 'layout' AS layout,
       e.f ->> 'requires_grad' AS requires_grad, e.f ->> 'is_leaf' AS is_leaf,
       e.f ->> 'is_view' AS is_view, e.f ->> 'is_parameter' AS is_parameter,
       e.f ->> 'is_inference' AS is_inference, e.f ->> 'is_nested' AS is_nested,
       e.f ->> 'is_functional' AS is_functional,
       e.f ->> 'is_traceable_wrapper_subclass' AS is_traceable_wrapper_subclass,
       e.f ->> 'dynamo_dynamic_indices' AS dynamo_dynamic_indices,
       e.f ->> 'creation_meta' AS creation_meta, e.f ->> 'base' AS base,
       e.f ->> 'type' AS type, e.f ->> 'attrs' AS attrs,
       e.f AS fields
FROM (SELECT *, metadata -> '$.describe_tensor' AS f FROM typed_envelopes
      WHERE kind = 'describe_tensor') e;

-- describe_source envelopes: which user-visible source (L['x'], a parameter...) a fake
-- tensor stands for.
CREATE VIEW tensor_sources AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> '$.describe_source.id' AS id,
       e.metadata ->> '$.describe_source.describer_id' AS describer_id,
       e.metadata ->> '$.describe_source.source' AS source
FROM typed_envelopes e
WHERE e.kind = 'describe_source';

-- What the symbolic shape environment did: symbols created (create_symbol for sizes,
-- create_unbacked_symbol for data-dependent values such as .item()), specializations, guards
-- added (guard_added_fast; guard_added with provenance under TORCH_DTRACE), real-tensor
-- propagation and data-dependent errors (export), and expressions created (TORCH_DTRACE).
CREATE VIEW shape_env_events AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.f ->> 'symbol' AS symbol,
       e.f ->> 'expr' AS expr,
       coalesce(e.f ->> 'val', e.f ->> 'value', e.f ->> 'result') AS value,
       e.f ->> 'vr' AS value_range,
       coalesce(e.f ->> 'source', e.f ->> 'sources') AS source,
       e.f ->> 'reason' AS reason,
       e.f ->> 'prefix' AS prefix,
       e.f ->> 'unhinted_expr' AS unhinted_expr,
       e.f ->> 'method' AS method,
       e.f ->> 'arguments' AS arguments,
       coalesce(e.f ->> 'node_id', e.f ->> 'expr_node_id', e.f ->> 'expr_id', e.f ->> 'result_id')
           AS node_id,
       e.f ->> 'argument_ids' AS argument_ids,
       e.f ->> 'symbol_to_sources' AS symbol_to_sources,
       e.f ->> 'frame_locals' AS frame_locals,
       e.f -> 'user_stack' AS user_stack,
       e.f -> 'stack' AS stack,
       e.f AS fields
FROM (SELECT *, metadata -> ('$.' || kind) AS f FROM typed_envelopes
      WHERE kind IN ('symbolic_shape_specialization', 'create_symbol', 'create_unbacked_symbol',
                     'guard_added_fast', 'guard_added', 'propagate_real_tensors',
                     'propagate_real_tensors_provenance', 'guard_on_data_dependent_error',
                     'expression_created')) e;

-- Operators export found without a fake (meta) kernel, or whose fake kernel disagreed with the
-- real one (TORCH_DTRACE, draft_export).
CREATE VIEW fake_kernel_events AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       e.metadata ->> ('$.' || e.kind || '.op') AS op,
       e.metadata ->> ('$.' || e.kind || '.reason') AS reason
FROM typed_envelopes e
WHERE e.kind IN ('missing_fake_kernel', 'mismatched_fake_kernel');

-- torch.export's own envelopes (TORCH_DTRACE): `export` when an export starts, and
-- `exported_program` with the printed ExportedProgram.
CREATE VIEW export_events AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name,
       p.size AS payload_bytes, p.text AS payload
FROM typed_envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.kind IN ('export', 'exported_program');

-- Envelopes logged inside a regional-Inductor subgraph compile (top-level subgraph_name key,
-- torch 2.13+), whatever their kind. tlparse 0.4.3 does not know the key, so the loader lists
-- it in unknown_keys: that short column is searched first, not every metadata text.
CREATE VIEW subgraphs AS
SELECT e.envelope_id, e.log_id, e.line, e.status, e.kind, e.compile_id, e.rank, e.subgraph_name
FROM typed_envelopes e JOIN envelopes u ON u.id = e.envelope_id
WHERE u.unknown_keys IS NOT NULL AND instr(u.unknown_keys, '"subgraph_name"') > 0
  AND e.subgraph_name IS NOT NULL;

-- The texts `tldb search` indexes, one document per envelope (its id is the FTS rowid): graphs,
-- generated code, guard dumps, string artifacts (pass graphs, graph break and recompile
-- reasons, bytecode...) and the stack of each dynamo_start as `file:line in function` lines
-- with the source line. The FTS5 table search_index (external content: this view) is built on
-- the first search, or with `tldb search --build DB`; until then this view is all there is.
CREATE VIEW search_documents AS
SELECT envelope_id, log_id, compile_id, kind, coalesce(name, kind) AS name, payload AS body
FROM graphs
UNION ALL
SELECT envelope_id, log_id, compile_id, kind, coalesce(name, filename, kind), payload
FROM output_code
UNION ALL
SELECT envelope_id, log_id, compile_id, kind, kind, payload FROM guard_dumps
UNION ALL
SELECT envelope_id, log_id, compile_id, kind, name, payload
FROM artifact_envelopes WHERE encoding = 'string'
UNION ALL
SELECT d.envelope_id, d.log_id, d.compile_id, d.kind, 'stack',
       (SELECT group_concat(coalesce(s.value, j.value ->> 'uninterned_filename', '?') || ':'
                            || (j.value ->> 'line') || ' in ' || (j.value ->> 'name')
                            || coalesce(char(10) || '    ' || (j.value ->> 'loc'), ''),
                            char(10))
        FROM json_each(d.stack) j
        LEFT JOIN strings s ON s.log_id = d.log_id AND s.idx = j.value ->> 'filename')
FROM dynamo_starts d WHERE json_valid(d.stack);
