-- Every file of the default plan, in number order: the summary files each one under the vLLM
-- state of the moment it was written.
SELECT envelope_id, number, kind, parser, path, path_plain, suffix
FROM outputs
WHERE log_id = :log_id AND mode = 'default'
ORDER BY number
