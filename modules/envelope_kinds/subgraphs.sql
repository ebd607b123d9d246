-- Envelopes logged inside a regional-Inductor subgraph compile, counted per subgraph and kind.
SELECT subgraph_name, compile_id, kind, count(*) AS envelopes, min(line) AS first_line
FROM subgraphs
WHERE log_id = :log_id
GROUP BY subgraph_name, compile_id, kind
ORDER BY min(envelope_id)
