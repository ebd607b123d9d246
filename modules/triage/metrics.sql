-- Compilation metrics of the log (forward and backward), with the frame they belong to.
SELECT m.envelope_id, m.kind, m.compile_id, e.frame_id, e.frame_compile_id,
       e.compiled_autograd_id, m.line, m.co_name, m.co_filename, m.co_firstlineno,
       m.fail_type, m.fail_reason, m.fail_user_frame_filename, m.fail_user_frame_lineno,
       m.restart_reasons, m.recompile_reason,
       coalesce(m.duration_us, m.entire_frame_compile_time_s * 1e6, m.elapsed_time * 1e6)
           AS duration_us,
       m.dynamo_cumulative_compile_time_us, m.aot_autograd_cumulative_compile_time_us,
       m.inductor_cumulative_compile_time_us, m.inductor_code_gen_cumulative_compile_time_us,
       m.backward_cumulative_compile_time_us, m.triton_compile_time_us,
       m.pre_grad_pass_time_us, m.joint_graph_pass_time_us, m.post_grad_pass_time_us,
       m.compile_time_autotune_time_us, m.gc_time_us, m.structured_logging_overhead_us,
       m.entire_frame_compile_time_s, m.backend_compile_time_s, m.inductor_compile_time_s,
       m.code_gen_time_s, m.dynamo_time_before_restart_s, m.guard_latency_us
FROM compilation_metrics m JOIN envelopes e ON e.id = m.envelope_id
WHERE m.log_id = :log_id
ORDER BY m.envelope_id
