-- Payloads of a rank's accepted chromium_event envelopes, in log order, run against that
-- rank's own database (the combined one keeps no chromium payload texts; see
-- chromium_merge.py for when this is needed at all).
SELECT CAST(p.text AS BLOB) AS payload
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.status = 'ok' AND e.kind = 'chromium_event'
ORDER BY e.id
