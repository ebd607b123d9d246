-- The regional-Inductor subgraph (top-level `subgraph_name` key, torch 2.13+) each numbered
-- entry of the report was logged in; entries logged outside one have no row here.
SELECT number, subgraph_name
FROM artifacts
WHERE log_id = :log_id AND subgraph_name IS NOT NULL
