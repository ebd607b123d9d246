-- Every compile-directory entry of every rank: its compile id, URL, file path and cache icon.
SELECT rank, compile_id, url, path, suffix
FROM outputs
WHERE mode = 'default'
ORDER BY rank, number
