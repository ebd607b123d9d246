-- Every envelope kind of the log with its count and the catalogue row that recognises it
-- (typed_view NULL when none does), in order of first appearance. `recognised`, `with_payload`
-- and `a_compile_id` are what the unrecognised_kinds view gives for the kinds no catalogue row
-- recognises: the module lists those from here rather than by a second scan of the envelopes.
SELECT e.kind, count(*) AS envelopes, min(e.line) AS first_line,
       (SELECT c.typed_view FROM envelope_catalogue c WHERE e.kind GLOB c.kind LIMIT 1)
           AS typed_view,
       (SELECT c.tlparse FROM envelope_catalogue c WHERE e.kind GLOB c.kind LIMIT 1) AS tlparse,
       EXISTS (SELECT 1 FROM envelope_catalogue c WHERE e.kind GLOB c.kind) AS recognised,
       sum(e.payload_id IS NOT NULL) AS with_payload, min(e.compile_id) AS a_compile_id
FROM envelopes e
WHERE e.log_id = :log_id AND e.kind IS NOT NULL AND e.status <> 'bad_json'
GROUP BY e.kind
ORDER BY min(e.id)
