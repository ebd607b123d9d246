-- Cache icons of each rank's compile-directory entries, in the rank's numbering order.
SELECT rank, suffix
FROM outputs
WHERE mode = 'default' AND suffix <> ''
ORDER BY rank, log_id, number
