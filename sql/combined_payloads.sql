-- The payloads whose text a combined database (ranks.db) keeps: those the cross-rank analyses
-- read (the multi-rank landing page's runtime estimates, collective schedules, output code and
-- graph execution orders, and the collectives view). Run against one attached rank database
-- `r` while combining. Every other payload keeps its row (md5, size) with text NULL: its text
-- stays in the rank's own database (rank_N/trace.db), so ranks.db is not a second copy of
-- every log. Chromium events, the largest payloads, are read from the rank databases.
SELECT e.payload_id
FROM r.envelopes e
LEFT JOIN r.outputs o ON o.envelope_id = e.id
WHERE e.payload_id IS NOT NULL
  AND (
    e.kind = 'inductor_output_code'
    OR e.metadata ->> '$.artifact.name' GLOB 'inductor_collective_schedule*'
    OR e.metadata ->> '$.artifact.name' GLOB 'inductor_runtime_and_tensor_meta*'
    OR o.path GLOB '*/inductor_collective_schedule*'
    OR o.path GLOB '*/inductor_runtime_and_tensor_meta*'
    OR o.path GLOB '*/inductor_output_code*'
    OR instr(o.name, 'graph_execution') > 0
  )
