-- Derived views over the tables of schema.sql: typed, query-friendly shapes of the raw records.
-- Each view is documented in datasette_metadata.yml.

-- Accepted envelopes with their payload text: the input of every report module.
CREATE VIEW records AS
SELECT e.id, e.log_id, e.line, e.kind, e.compile_id, e.compile_dir, e.rank,
       e.frame_id, e.frame_compile_id, e.attempt, e.compiled_autograd_id,
       e.metadata, e.has_payload, p.text AS payload
FROM envelopes e LEFT JOIN payloads p ON p.id = e.payload_id
WHERE e.status = 'ok';

-- Files and links of the default report, with the envelope kind that made them.
CREATE VIEW artifacts AS
SELECT o.log_id, o.number, o.compile_id, o.parser, o.kind, o.path, o.name, o.url, o.suffix,
       e.line, e.kind AS envelope_kind, e.id AS envelope_id,
       CASE WHEN o.parser = 'artifact' THEN e.metadata ->> '$.artifact.name' END AS artifact_name
FROM outputs o JOIN envelopes e ON e.id = o.envelope_id
WHERE o.mode = 'default';

-- Every envelope kind seen, with counts, and whether tlparse 0.4.3 models it.
CREATE VIEW envelope_kinds AS
SELECT kind, count(*) AS envelopes, sum(status = 'ok') AS accepted,
       min(line) AS first_line
FROM envelopes GROUP BY kind ORDER BY envelopes DESC;
