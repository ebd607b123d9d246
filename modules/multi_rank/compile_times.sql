-- Each rank's total compile time: the sum of duration_s (metrics view: duration_us, else the
-- older entire_frame_compile_time_s, else the cumulative times) over its forward
-- (compilation_metrics) and backward (bwd_compilation_metrics) compiles, which do not overlap.
-- compilation_metrics_runtime is left out: it measures running, not compiling.
SELECT rank, sum(duration_s) AS seconds, count(duration_s) AS compiles
FROM metrics
WHERE kind IN ('compilation_metrics', 'bwd_compilation_metrics') AND rank IS NOT NULL
GROUP BY rank
HAVING count(duration_s) > 0
ORDER BY rank
