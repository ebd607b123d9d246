-- Envelopes logged inside a regional-Inductor subgraph compile, counted per subgraph and kind.
-- Read from envelopes, not the subgraphs view: the unknown_keys test runs before the JSON
-- extraction, so only envelopes with a subgraph_name key are parsed (2.7 -> 0.4 ms a rank log).
SELECT metadata ->> '$.subgraph_name' AS subgraph_name, compile_id, kind, count(*) AS envelopes,
       min(line) AS first_line
FROM envelopes
WHERE log_id = :log_id AND status <> 'bad_json' AND kind IS NOT NULL
  AND unknown_keys IS NOT NULL AND instr(unknown_keys, '"subgraph_name"') > 0
  AND metadata ->> '$.subgraph_name' IS NOT NULL
GROUP BY 1, compile_id, kind
ORDER BY min(id)
