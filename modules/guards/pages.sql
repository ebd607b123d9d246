-- Paths and numbers of the dynamo_guards pages, without their payloads (for `tldb serve`).
SELECT o.number, o.path
FROM outputs o
WHERE o.log_id = :log_id AND o.mode = :mode AND o.parser = 'dynamo_guards'
ORDER BY o.number
