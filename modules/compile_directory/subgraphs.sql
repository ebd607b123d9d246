-- The regional-Inductor subgraph (top-level `subgraph_name` key, torch 2.13+) each numbered
-- entry of the report was logged in; entries logged outside one have no row here.
-- As the artifacts view's subgraph_name, but the JSON is read only for envelopes whose
-- unknown_keys name subgraph_name: tlparse 0.4.3 does not model the key, so the loader lists it
-- there for every accepted envelope (the only ones with outputs) that has it, as the
-- subgraphs view relies on. 1.1 -> 0.1 ms a rank log.
SELECT o.number, e.metadata ->> '$.subgraph_name' AS subgraph_name
FROM outputs o JOIN envelopes e ON e.id = o.envelope_id
WHERE o.log_id = :log_id AND o.mode = 'default'
  AND e.unknown_keys IS NOT NULL AND instr(e.unknown_keys, '"subgraph_name"') > 0
  AND e.status <> 'bad_json' AND json_type(e.metadata, '$.subgraph_name') = 'text'
