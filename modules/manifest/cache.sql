-- Cache outcomes of the report's files: the kind of cache (the artifact name without its
-- _hit/_miss/_bypass ending) and the outcome, counted.
SELECT CASE suffix WHEN '✅' THEN 'hit' WHEN '❌' THEN 'miss' ELSE 'bypass' END AS outcome,
       coalesce(metadata ->> '$.artifact.name', parser) AS artifact,
       count(*) AS n
FROM outputs o JOIN envelopes e ON e.id = o.envelope_id
WHERE o.log_id = :log_id AND o.mode = 'default' AND o.suffix != ''
GROUP BY outcome, artifact
ORDER BY artifact, outcome
