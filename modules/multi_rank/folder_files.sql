-- Files whose name starts with :prefix somewhere under a folder of a rank report, with the
-- payload they were written from; by rank, folder, then number. (The caller keeps only files
-- directly inside a compile folder, as tlparse reads them.)
SELECT o.rank, o.path, o.path_plain, o.kind, o.number, p.text AS payload
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE o.mode = 'default' AND o.path GLOB '*/' || :prefix || '*'
ORDER BY o.rank, substr(o.path, 1, instr(o.path, '/') - 1), o.number
