-- Whether the log created any symbol: only then do metrics pages get the Created Symbols and
-- Unbacked Symbols tables (tlparse 0.4.3's pages have neither).
SELECT EXISTS (
  SELECT 1 FROM envelopes
  WHERE log_id = :log_id AND status = 'ok' AND kind IN ('create_symbol', 'create_unbacked_symbol')
) AS present
