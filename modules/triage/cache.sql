-- Cache lookups reported as artifacts: the FX graph cache (Inductor) and the AOTAutograd cache.
SELECT compile_id, name,
       CASE WHEN name LIKE 'fx_graph%' THEN 'FX graph (Inductor)' ELSE 'AOTAutograd' END AS cache,
       CASE WHEN name GLOB '*_hit' THEN 'hit' WHEN name GLOB '*_miss' THEN 'miss'
            WHEN name GLOB '*_bypass' THEN 'bypass' ELSE 'other' END AS outcome,
       CASE WHEN json_valid(payload)
            THEN coalesce(payload ->> 'cache_bypass_reason', payload ->> 'cache_status_detailed')
       END AS detail
FROM artifact_envelopes
WHERE log_id = :log_id
  AND (name GLOB 'fx_graph_cache_*' OR name = 'fx_graph_bundled_cache_hit'
       OR name GLOB 'aotautograd_cache_*')
  AND name <> 'aotautograd_cache_pickle_failure'
ORDER BY envelope_id
