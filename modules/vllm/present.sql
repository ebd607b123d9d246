-- Whether the log has anything the vLLM summary shows: a file of a vLLM parser, or the
-- generic copy of a piecewise compile start (read from the plan, not from every envelope, so
-- that a report without vLLM costs one scan of its outputs; a compile start whose artifact
-- encoding tlparse rejects, so without a generic file, is the one case this misses).
SELECT EXISTS (
    SELECT 1 FROM outputs
    WHERE log_id = :log_id AND mode = 'default'
      AND (parser GLOB 'vllm_*' OR path GLOB '*/vllm_piecewise_compile_start_[0-9]*')
) AS present
