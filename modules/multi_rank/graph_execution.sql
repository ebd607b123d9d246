-- Compile-directory entries that may hold a recorded graph execution order, with their payload.
SELECT o.rank, o.number, o.kind, o.name, p.text AS payload
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE o.mode = 'default' AND instr(o.name, 'graph_execution') > 0
ORDER BY o.rank, o.number
