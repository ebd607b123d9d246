-- Derived views over the tables of schema.sql: typed, query-friendly shapes of the raw records.
-- Each view is documented in datasette_metadata.yml (a test checks every column is described).
-- Plain SQLite 3.40: JSON1 and ->> only. Payloads that are not valid JSON (cut by a bad md5,
-- or a bare string where JSON was declared) are guarded with json_valid, never parsed blindly.
-- `rank` in these views: the rank in the log's file name (dedicated_log_torch_trace_rank_N),
-- else the envelope's (in a combined database: its rank database's), else the log's detected
-- rank. File name first, as tlparse --all-ranks-html and `tldb combine` do.

-- Accepted envelopes with their payload text: the input of every report module.
CREATE VIEW records AS
SELECT e.id, e.log_id, e.line, e.kind, e.compile_id, e.compile_dir, e.rank,
       e.frame_id, e.frame_compile_id, e.attempt, e.compiled_autograd_id,
       e.metadata, e.has_payload, p.text AS payload
FROM envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.status = 'ok';

-- Files and links of the default report, with the envelope kind that made them and the
-- regional-Inductor subgraph (subgraph_name) it was logged in.
CREATE VIEW artifacts AS
SELECT o.log_id, o.number, o.compile_id, o.parser, o.kind, o.path, o.name, o.url, o.suffix,
       e.line, e.kind AS envelope_kind, e.id AS envelope_id,
       CASE WHEN o.parser = 'artifact' THEN e.metadata ->> '$.artifact.name' END AS artifact_name,
       CASE WHEN e.status = 'bad_json' THEN NULL  -- not JSON: never parsed (CASE is lazy)
            WHEN json_type(e.metadata, '$.subgraph_name') = 'text'
            THEN e.metadata ->> '$.subgraph_name' END AS subgraph_name
FROM outputs o JOIN envelopes e ON e.id = o.envelope_id
WHERE o.mode = 'default';

-- Every envelope kind seen, with counts, and how many of them tlparse 0.4.3 does not model.
CREATE VIEW envelope_kinds AS
SELECT kind, count(*) AS envelopes, sum(status = 'ok') AS accepted,
       min(line) AS first_line,
       sum(unknown_keys IS NOT NULL AND instr(unknown_keys, '"' || kind || '"') > 0) AS unknown
FROM envelopes GROUP BY kind ORDER BY envelopes DESC;

-- One row per compilation_metrics, bwd_compilation_metrics or compilation_metrics_runtime
-- envelope: the fields people ask about as columns, every field in `fields`. Each column is a
-- json_extract of the envelope's metadata, whose parse SQLite caches for the statement; the
-- same through `fields` (m.f ->> ...) serialised the 40 KB object once and parsed it again per
-- column: 2.7x the time over the test logs, for a view every rank of a many-rank run computes.
CREATE VIEW metrics AS
SELECT m.id AS envelope_id, m.log_id,
       coalesce(l.file_rank, m.rank, l.detected_rank) AS rank, m.line,
       m.kind, m.compile_id, m.frame_id, m.frame_compile_id, m.attempt,
       json_extract(m.metadata, m.p || '.co_name') AS co_name,
       json_extract(m.metadata, m.p || '.co_filename') AS co_filename,
       json_extract(m.metadata, m.p || '.co_firstlineno') AS co_firstlineno,
       coalesce(json_extract(m.metadata, m.p || '.duration_us') / 1e6,
                json_extract(m.metadata, m.p || '.entire_frame_compile_time_s'),
                json_extract(m.metadata, m.p || '.dynamo_cumulative_compile_time_us') / 1e6,
                json_extract(m.metadata, m.p || '.backward_cumulative_compile_time_us') / 1e6,
                json_extract(m.metadata, m.p || '.inductor_cumulative_compile_time_us') / 1e6)
           AS duration_s,
       json_extract(m.metadata, m.p || '.entire_frame_compile_time_s')
           AS entire_frame_compile_time_s,
       json_extract(m.metadata, m.p || '.backend_compile_time_s') AS backend_compile_time_s,
       json_extract(m.metadata, m.p || '.inductor_compile_time_s') AS inductor_compile_time_s,
       json_extract(m.metadata, m.p || '.code_gen_time_s') AS code_gen_time_s,
       json_extract(m.metadata, m.p || '.dynamo_cumulative_compile_time_us')
           AS dynamo_cumulative_compile_time_us,
       json_extract(m.metadata, m.p || '.aot_autograd_cumulative_compile_time_us')
           AS aot_autograd_cumulative_compile_time_us,
       json_extract(m.metadata, m.p || '.inductor_cumulative_compile_time_us')
           AS inductor_cumulative_compile_time_us,
       json_extract(m.metadata, m.p || '.inductor_code_gen_cumulative_compile_time_us')
           AS inductor_code_gen_cumulative_compile_time_us,
       json_extract(m.metadata, m.p || '.backward_cumulative_compile_time_us')
           AS backward_cumulative_compile_time_us,
       json_extract(m.metadata, m.p || '.triton_compile_time_us') AS triton_compile_time_us,
       json_extract(m.metadata, m.p || '.pre_grad_pass_time_us') AS pre_grad_pass_time_us,
       json_extract(m.metadata, m.p || '.joint_graph_pass_time_us') AS joint_graph_pass_time_us,
       json_extract(m.metadata, m.p || '.post_grad_pass_time_us') AS post_grad_pass_time_us,
       json_extract(m.metadata, m.p || '.compile_time_autotune_time_us')
           AS compile_time_autotune_time_us,
       json_extract(m.metadata, m.p || '.gc_time_us') AS gc_time_us,
       json_extract(m.metadata, m.p || '.structured_logging_overhead_us')
           AS structured_logging_overhead_us,
       json_extract(m.metadata, m.p || '.dynamo_time_before_restart_s')
           AS dynamo_time_before_restart_s,
       json_extract(m.metadata, m.p || '.cache_size') AS cache_size,
       json_extract(m.metadata, m.p || '.accumulated_cache_size') AS accumulated_cache_size,
       json_extract(m.metadata, m.p || '.guard_count') AS guard_count,
       json_extract(m.metadata, m.p || '.shape_env_guard_count') AS shape_env_guard_count,
       json_extract(m.metadata, m.p || '.guard_latency_us') AS guard_latency_us,
       json_extract(m.metadata, m.p || '.graph_op_count') AS graph_op_count,
       json_extract(m.metadata, m.p || '.graph_node_count') AS graph_node_count,
       json_extract(m.metadata, m.p || '.graph_input_count') AS graph_input_count,
       json_extract(m.metadata, m.p || '.num_graph_breaks') AS num_graph_breaks,
       json_extract(m.metadata, m.p || '.fail_type') AS fail_type,
       json_extract(m.metadata, m.p || '.fail_reason') AS fail_reason,
       json_extract(m.metadata, m.p || '.fail_user_frame_filename') AS fail_user_frame_filename,
       json_extract(m.metadata, m.p || '.fail_user_frame_lineno') AS fail_user_frame_lineno,
       CASE WHEN json_type(m.metadata, m.p || '.restart_reasons') = 'array'
            THEN json(json_extract(m.metadata, m.p || '.restart_reasons')) END AS restart_reasons,
       json_extract(m.metadata, m.p || '.recompile_reason') AS recompile_reason,
       json_extract(m.metadata, m.p || '.has_guarded_code') AS has_guarded_code,
       json_extract(m.metadata, m.p || '.inductor_fx_local_cache_hit_count')
           AS inductor_fx_local_cache_hit_count,
       json_extract(m.metadata, m.p || '.inductor_fx_local_cache_miss_count')
           AS inductor_fx_local_cache_miss_count,
       json_extract(m.metadata, m.p || '.aotautograd_local_cache_hit_count')
           AS aotautograd_local_cache_hit_count,
       json_extract(m.metadata, m.p || '.aotautograd_local_cache_miss_count')
           AS aotautograd_local_cache_miss_count,
       json_extract(m.metadata, m.p || '.is_forward') AS is_forward,
       json_extract(m.metadata, m.p || '.pytorch_version') AS pytorch_version,
       m.f AS fields
FROM (SELECT e.*, '$.' || e.kind AS p, e.metadata -> ('$.' || e.kind) AS f
      FROM envelopes e
      WHERE e.status = 'ok'
        AND e.kind IN ('compilation_metrics', 'bwd_compilation_metrics',
                       'compilation_metrics_runtime')) m
JOIN logs l ON l.id = m.log_id;

-- One row per artifact envelope that reports a cache lookup (fx_graph_cache_*,
-- aotautograd_cache_*): which cache, and whether it hit, missed or was bypassed.
CREATE VIEW cache_events AS
SELECT c.id AS envelope_id, c.log_id,
       coalesce(l.file_rank, c.rank, l.detected_rank) AS rank, c.line,
       c.compile_id, c.name AS artifact_name,
       CASE WHEN c.name LIKE 'fx_graph_cache_%' THEN 'fx_graph' ELSE 'aotautograd' END AS cache,
       CASE WHEN c.suffix IN ('hit', 'miss', 'bypass') THEN c.suffix
            WHEN json_valid(c.payload) THEN c.payload ->> 'cache_state' END AS outcome,
       CASE WHEN json_valid(c.payload) THEN c.payload ->> 'key' END AS key,
       CASE WHEN json_valid(c.payload)
            THEN coalesce(c.payload ->> 'cache_bypass_reason',
                          c.payload ->> 'cache_status_detailed') END AS detail
FROM (SELECT e.id, e.log_id, e.rank, e.line, e.compile_id, e.name,
             substr(e.name, instr(e.name, '_cache_') + 7) AS suffix, p.text AS payload
      FROM (SELECT *, metadata ->> '$.artifact.name' AS name FROM envelopes
            WHERE status = 'ok' AND kind = 'artifact') e
      LEFT JOIN payloads p ON p.id = e.payload_id
      WHERE e.name LIKE 'fx\_graph\_cache\_%' ESCAPE '\'
         OR e.name LIKE 'aotautograd\_cache\_%' ESCAPE '\') c
JOIN logs l ON l.id = c.log_id;

-- One row per compile id of each log (tlparse's compile directory), with tlparse's status
-- (ok, break, empty, error, missing) and cache status (miss, hit, bypass, or '').
CREATE VIEW compiles AS
WITH ids AS (
    SELECT log_id, compile_id, min(id) AS first_id, min(line) AS first_line,
           max(rank) AS rank, count(*) AS envelopes, min(frame_id) AS frame_id,
           min(frame_compile_id) AS frame_compile_id, min(attempt) AS attempt
    FROM envelopes WHERE status = 'ok' GROUP BY log_id, compile_id
), m AS (
    SELECT log_id, compile_id, count(*) AS n, max(co_name) AS co_name,
           max(co_filename) AS co_filename, max(co_firstlineno) AS co_firstlineno,
           sum(duration_s) AS duration_s, max(guard_count) AS guard_count,
           max(graph_op_count) AS graph_op_count, max(fail_type) AS fail_type,
           sum(fail_type IS NOT NULL) AS failed,
           sum(coalesce(graph_op_count, 0) = 0) AS empty,
           sum(restart_reasons IS NULL OR restart_reasons != '[]') AS restarted,
           sum(json_array_length(restart_reasons)) AS restarts
    FROM metrics WHERE kind = 'compilation_metrics' GROUP BY log_id, compile_id
), c AS (
    SELECT log_id, compile_id,
           CASE WHEN sum(outcome = 'miss') THEN 'miss' WHEN sum(outcome = 'hit') THEN 'hit'
                WHEN sum(outcome = 'bypass') THEN 'bypass' ELSE '' END AS cache_status
    FROM cache_events GROUP BY log_id, compile_id
)
SELECT ids.log_id, coalesce(l.file_rank, ids.rank, l.detected_rank) AS rank, ids.compile_id,
       ids.frame_id, ids.frame_compile_id, ids.attempt,
       CASE WHEN m.n IS NULL THEN 'missing' WHEN m.failed THEN 'error' WHEN m.empty THEN 'empty'
            WHEN m.restarted THEN 'break' ELSE 'ok' END AS status,
       coalesce(c.cache_status, '') AS cache_status,
       m.co_name, m.co_filename, m.co_firstlineno, m.duration_s, m.guard_count,
       m.graph_op_count, m.fail_type, coalesce(m.restarts, 0) AS restarts,
       ids.envelopes, ids.first_line
FROM ids
JOIN logs l ON l.id = ids.log_id
LEFT JOIN m ON m.log_id = ids.log_id AND m.compile_id = ids.compile_id
LEFT JOIN c ON c.log_id = ids.log_id AND c.compile_id = ids.compile_id
ORDER BY ids.log_id, ids.first_id;

-- One row per graph break: each dynamo_graph_break_reason artifact, split into the user code
-- location and the reason; for logs too old to write that artifact, each restart reason of
-- compilation_metrics instead (a restart is how older Dynamo reported a graph break). The
-- NOT IN subqueries here and in recompiles are uncorrelated on purpose: run once, not per row.
CREATE VIEW graph_breaks AS
SELECT g.id AS envelope_id, g.log_id,
       coalesce(l.file_rank, g.rank, l.detected_rank) AS rank, g.line,
       g.compile_id, g.frame_id, g.frame_compile_id, 'artifact' AS source,
       CASE WHEN g.head LIKE 'Graph break in user code at %' THEN substr(g.head, 29) END
           AS location,
       trim(CASE WHEN instr(g.body, 'User code traceback:') > 0
                 THEN substr(g.body, 1, instr(g.body, 'User code traceback:') - 1)
                 ELSE g.body END) AS reason,
       g.text AS payload
FROM (SELECT e.*, p.text,
             substr(p.text, 1, instr(p.text || char(10), char(10)) - 1) AS head,
             CASE WHEN instr(p.text, 'Graph Break Reason: ') > 0
                  THEN substr(p.text, instr(p.text, 'Graph Break Reason: ') + 20)
                  ELSE p.text END AS body
      FROM envelopes e JOIN payloads p ON p.id = e.payload_id
      WHERE e.status = 'ok' AND e.kind = 'artifact'
        AND e.metadata ->> '$.artifact.name' = 'dynamo_graph_break_reason') g
JOIN logs l ON l.id = g.log_id
UNION ALL
SELECT m.envelope_id, m.log_id, m.rank, m.line, m.compile_id, m.frame_id, m.frame_compile_id,
       'restart_reason', NULL, r.value, NULL
FROM metrics m, json_each(m.restart_reasons) r
WHERE m.kind = 'compilation_metrics'
  AND m.log_id NOT IN (SELECT log_id FROM envelopes
                       WHERE kind = 'artifact' AND status = 'ok'
                         AND metadata ->> '$.artifact.name' = 'dynamo_graph_break_reason');

-- One row per recompile reason: the entries of each recompile_reasons artifact (a JSON list,
-- or a bare string when there is one reason), else the recompile_reason metrics field.
CREATE VIEW recompiles AS
SELECT r.id AS envelope_id, r.log_id,
       coalesce(l.file_rank, r.rank, l.detected_rank) AS rank, r.line,
       r.compile_id, r.frame_id, r.frame_compile_id, 'artifact' AS source,
       CASE WHEN json_valid(r.text) AND json_type(r.text) = 'array'
            THEN (SELECT group_concat(value, char(10)) FROM json_each(r.text))
            WHEN json_valid(r.text) AND json_type(r.text) = 'text' THEN r.text ->> '$'
            ELSE r.text END AS reason,
       CASE WHEN json_valid(r.text) AND json_type(r.text) = 'array'
            THEN json_array_length(r.text) ELSE 1 END AS reasons
FROM (SELECT e.*, p.text FROM envelopes e JOIN payloads p ON p.id = e.payload_id
      WHERE e.status = 'ok' AND e.kind = 'artifact'
        AND e.metadata ->> '$.artifact.name' = 'recompile_reasons') r
JOIN logs l ON l.id = r.log_id
UNION ALL
SELECT m.envelope_id, m.log_id, m.rank, m.line, m.compile_id, m.frame_id, m.frame_compile_id,
       'metrics', m.recompile_reason, 1
FROM metrics m
WHERE m.kind = 'compilation_metrics' AND m.recompile_reason IS NOT NULL
  AND (m.log_id, m.frame_id, m.frame_compile_id) NOT IN (
      SELECT log_id, frame_id, frame_compile_id FROM envelopes
      WHERE kind = 'artifact' AND status = 'ok' AND frame_id IS NOT NULL
        AND frame_compile_id IS NOT NULL
        AND metadata ->> '$.artifact.name' = 'recompile_reasons');

-- Failures and restarts (tlparse's failures_and_restarts page): one row per failed
-- compilation_metrics envelope and one per restart reason.
CREATE VIEW failures AS
SELECT envelope_id, log_id, rank, line, compile_id, kind, 'failure' AS failure, fail_type,
       fail_reason AS reason, fail_user_frame_filename, fail_user_frame_lineno, co_name
FROM metrics WHERE fail_type IS NOT NULL
UNION ALL
SELECT m.envelope_id, m.log_id, m.rank, m.line, m.compile_id, m.kind, 'restart',
       'RestartAnalysis', r.value, m.fail_user_frame_filename, m.fail_user_frame_lineno,
       m.co_name
FROM metrics m, json_each(m.restart_reasons) r;

-- Every chromium_event payload as columns (trace event format: name, ph, ts in µs, ...).
CREATE VIEW chromium_events AS
SELECT e.id AS envelope_id, e.log_id,
       coalesce(l.file_rank, e.rank, l.detected_rank) AS rank, e.line,
       e.compile_id, e.frame_id, e.frame_compile_id,
       p.text ->> 'name' AS name, p.text ->> 'ph' AS ph, p.text ->> 'cat' AS cat,
       p.text ->> 'ts' AS ts, p.text ->> 'dur' AS dur, p.text ->> 'pid' AS pid,
       p.text ->> 'tid' AS tid, p.text ->> '$.args.compile_id' AS event_compile_id,
       json(p.text -> 'args') AS args
FROM envelopes e
JOIN payloads p ON p.id = e.payload_id
JOIN logs l ON l.id = e.log_id
WHERE e.status = 'ok' AND e.kind = 'chromium_event' AND json_valid(p.text)
  AND json_type(p.text) = 'object';

-- Timed spans: each begin (B) event paired with its end (E), the nth B with the nth E of the
-- same name, thread and compile; complete (X) events as they are. Durations in µs. The loader
-- read each event's fields and paired each begin with its end once (chromium_fields,
-- tldb/chromium_fields.py), so this view parses no JSON but the args of the rows it returns:
-- paired begins in the order of their group (log, name, pid, tid, compile id) and of the begins
-- in it, then the complete events in log order.
CREATE VIEW chromium_spans AS
SELECT log_id, rank, compile_id, frame_id, frame_compile_id, event_compile_id, name, cat,
       start_us, duration_us, begin_line, end_line,
       (SELECT text -> 'args' FROM payloads WHERE id = args_payload) AS end_args
FROM (
    SELECT 0 AS part, e.log_id, coalesce(l.file_rank, e.rank, l.detected_rank) AS rank,
           e.compile_id, e.frame_id, e.frame_compile_id, b.event_compile_id, b.name, b.cat,
           b.ts AS start_us, x.ts - b.ts AS duration_us, e.line AS begin_line,
           xe.line AS end_line, xe.payload_id AS args_payload, b.pid, b.tid, b.envelope_id
    FROM chromium_fields b
    JOIN envelopes e ON e.id = b.envelope_id
    JOIN logs l ON l.id = e.log_id
    JOIN chromium_fields x ON x.envelope_id = b.end_envelope
    JOIN envelopes xe ON xe.id = b.end_envelope
    WHERE b.ph = 'B' AND x.ts IS NOT NULL
    UNION ALL
    SELECT 1, e.log_id, coalesce(l.file_rank, e.rank, l.detected_rank), e.compile_id,
           e.frame_id, e.frame_compile_id, b.event_compile_id, b.name, b.cat, b.ts, b.dur,
           e.line, e.line, e.payload_id, NULL, NULL, b.envelope_id
    FROM chromium_fields b
    JOIN envelopes e ON e.id = b.envelope_id
    JOIN logs l ON l.id = e.log_id
    WHERE b.ph = 'X'
)
ORDER BY part, CASE part WHEN 0 THEN log_id END, CASE part WHEN 0 THEN name END, pid, tid,
         CASE part WHEN 0 THEN coalesce(event_compile_id, '') END, envelope_id;

-- The collective operations of each inductor_collective_schedule artifact, in order.
CREATE VIEW collectives AS
SELECT c.id AS envelope_id, c.log_id,
       coalesce(l.file_rank, c.rank, l.detected_rank) AS rank, c.line,
       c.compile_id, j.key AS position, j.value AS op
FROM (SELECT e.*, p.text FROM envelopes e JOIN payloads p ON p.id = e.payload_id
      WHERE e.status = 'ok' AND e.kind = 'artifact'
        AND e.metadata ->> '$.artifact.name' = 'inductor_collective_schedule'
        AND json_valid(p.text)) c
JOIN logs l ON l.id = c.log_id, json_each(c.text) j;

-- One row per guard: each leaf of a dynamo_cpp_guards_str guard tree (a `+- TYPE: code` line;
-- the GuardManager lines above the leaves only say where values come from), split once by the
-- loader (guard_leaves), and each entry of an older dynamo_guards list.
CREATE VIEW guards AS
SELECT g.envelope_id, e.log_id, coalesce(l.file_rank, e.rank, l.detected_rank) AS rank, e.line,
       e.compile_id, 'dynamo_cpp_guards_str' AS source, g.guard_type, g.code, g.depth
FROM guard_leaves g JOIN envelopes e ON e.id = g.envelope_id JOIN logs l ON l.id = e.log_id
UNION ALL
SELECT e.id, e.log_id, coalesce(l.file_rank, e.rank, l.detected_rank), e.line, e.compile_id,
       'dynamo_guards', NULL, j.value ->> 'code', NULL
FROM envelopes e JOIN payloads p ON p.id = e.payload_id JOIN logs l ON l.id = e.log_id,
     json_each(CASE WHEN json_valid(p.text) THEN p.text ELSE '[]' END) j
WHERE e.status = 'ok' AND e.kind = 'dynamo_guards';
