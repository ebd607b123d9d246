-- The payloads whose text a combined database (ranks.db) keeps: those that cross-rank
-- questions read from the combined tables. The multi-rank landing page reads runtime
-- estimates, collective schedules, output code and graph execution orders; Datasette's views
-- over the combined tables read graph break reasons (graph_breaks), recompile reasons
-- (recompiles) and collective schedules. The views combine.py computes rank by rank in the
-- rank databases (metrics, cache_events, guards, collectives, chromium_spans) read their texts
-- there, and the landing's chromium_events.json comes from the ranks' own files or databases.
-- Run against one attached rank database `r` while combining. Every other payload (graphs,
-- cache entries, guards, chromium events, most artifacts) keeps its row (md5, size) with text
-- NULL: its text stays in the rank's own database (rank_N/trace.db), so ranks.db is not a
-- second copy of every log.
SELECT e.payload_id
FROM r.envelopes e
LEFT JOIN r.outputs o ON o.envelope_id = e.id
WHERE e.payload_id IS NOT NULL
  AND (
    e.kind = 'inductor_output_code'
    OR e.metadata ->> '$.artifact.name' GLOB 'inductor_collective_schedule*'
    OR e.metadata ->> '$.artifact.name' IN ('recompile_reasons', 'dynamo_graph_break_reason')
    OR e.metadata ->> '$.artifact.name' GLOB 'inductor_runtime_and_tensor_meta*'
    OR o.path GLOB '*/inductor_collective_schedule*'
    OR o.path GLOB '*/inductor_runtime_and_tensor_meta*'
    OR o.path GLOB '*/inductor_output_code*'
    OR instr(o.name, 'graph_execution') > 0
  )
