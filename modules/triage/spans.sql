-- Begin and end events of the timed compile phases, in log order.
SELECT event_compile_id, name, ph, ts, tid, pid
FROM trace_events
WHERE log_id = :log_id AND ph IN ('B', 'E')
ORDER BY envelope_id
