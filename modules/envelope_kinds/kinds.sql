-- Every envelope kind of the log with its count and the catalogue row that recognises it
-- (typed_view NULL when none does), in order of first appearance.
SELECT e.kind, count(*) AS envelopes, min(e.line) AS first_line,
       (SELECT c.typed_view FROM envelope_catalogue c WHERE e.kind GLOB c.kind LIMIT 1)
           AS typed_view,
       (SELECT c.tlparse FROM envelope_catalogue c WHERE e.kind GLOB c.kind LIMIT 1) AS tlparse
FROM envelopes e
WHERE e.log_id = :log_id AND e.kind IS NOT NULL AND e.status <> 'bad_json'
GROUP BY e.kind
ORDER BY min(e.id)
