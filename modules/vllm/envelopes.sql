-- The envelopes that change the vLLM state or the pass-diff chain, in log order, with the
-- payloads the module reads (configurations, compile starts and events, the graphs passes are
-- diffed on); the split graph and submodule dumps come without theirs (they can be large).
SELECT e.id AS envelope_id,
       e.metadata ->> '$.artifact.name' AS artifact,
       e.metadata ->> '$.graph_dump.name' AS dump,
       CASE WHEN e.kind = 'artifact' OR e.metadata ->> '$.graph_dump.name' GLOB 'vllm_post_grad.*'
            THEN p.text END AS payload
FROM envelopes e
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.log_id = :log_id AND e.status = 'ok' AND e.kind IN ('artifact', 'graph_dump')
  AND (e.metadata ->> '$.artifact.name' IN ('vllm_compilation_config',
                                            'vllm_piecewise_compile_start',
                                            'vllm_compile_event', 'before_post_grad_graph')
       OR e.metadata ->> '$.graph_dump.name' GLOB 'vllm_*')
ORDER BY e.id
