-- The filename interning table of the log.
SELECT idx, value FROM strings WHERE log_id = :log_id ORDER BY idx
