-- Numbered files whose content comes straight from the payload: graphs, generic artifacts,
-- output code, dump_file sources (one row per output, in number order). Without :with_text,
-- no payload (`tldb serve` lists the files before making any).
SELECT o.number, o.kind, o.parser, o.path, o.path_plain, o.readable_path,
       CASE WHEN :with_text THEN CAST(p.text AS BLOB) END AS payload
FROM outputs o
JOIN envelopes e ON e.id = o.envelope_id
LEFT JOIN payloads p ON p.id = e.payload_id
WHERE o.log_id = :log_id AND o.mode = :mode
  AND (o.kind IN ('payload', 'reformat') OR o.parser IN ('inductor_output_code', 'dump_file'))
  -- The part of the files this render writes (see Module.shards): by number, except that
  -- unnumbered files (dump_file pages) all go to part 0, where a later one replaces an
  -- earlier one of the same name in log order.
  AND CASE WHEN o.kind = 'global' THEN :part = 0 ELSE o.number % :parts = :part END
ORDER BY o.number
