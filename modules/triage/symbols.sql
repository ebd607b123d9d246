-- Symbols created per compile id: sizes made dynamic (create_symbol) and data-dependent
-- values (create_unbacked_symbol).
SELECT compile_id, kind, count(*) AS n, group_concat(symbol || ' (' || coalesce(source, '?') || ')', ', ') AS symbols
FROM shape_env_events
WHERE log_id = :log_id AND kind IN ('create_symbol', 'create_unbacked_symbol')
GROUP BY compile_id, kind
