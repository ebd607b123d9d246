-- The ranks of the combined database, ascending.
SELECT DISTINCT rank FROM logs ORDER BY rank
