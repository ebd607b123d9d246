-- The payloads whose text a combined database (ranks.db) keeps: those cross-rank questions
-- read. The multi-rank landing page reads chromium events, runtime estimates, collective
-- schedules, output code and graph execution orders; Datasette's views read chromium events
-- (compile phases per rank), guards (guards per compile), collective schedules and vLLM's small
-- JSON payloads (its views' configuration and compile columns). Run against
-- one attached rank database `r` while combining. Every other payload (graphs, cache entries,
-- most artifacts) keeps its row (md5, size) with text NULL: its text stays in the rank's own
-- database (rank_N/trace.db), so ranks.db is not a second copy of every log.
SELECT e.payload_id
FROM r.envelopes e
LEFT JOIN r.outputs o ON o.envelope_id = e.id
WHERE e.payload_id IS NOT NULL
  AND (
    e.kind IN ('chromium_event', 'inductor_output_code', 'dynamo_cpp_guards_str', 'dynamo_guards')
    OR e.metadata ->> '$.artifact.name' GLOB 'inductor_collective_schedule*'
    OR e.metadata ->> '$.artifact.name' IN ('vllm_compilation_config',
                                            'vllm_piecewise_compile_start', 'vllm_compile_event')
    OR e.metadata ->> '$.artifact.name' GLOB 'inductor_runtime_and_tensor_meta*'
    OR o.path GLOB '*/inductor_collective_schedule*'
    OR o.path GLOB '*/inductor_runtime_and_tensor_meta*'
    OR o.path GLOB '*/inductor_output_code*'
    OR instr(o.name, 'graph_execution') > 0
  )
