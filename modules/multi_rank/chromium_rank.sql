-- Payloads of one rank's accepted chromium_event envelopes, in log order (for a rank whose
-- own chromium_events.json cannot be reused; see chromium_merge.py).
SELECT e.rank, p.text AS payload
FROM envelopes e JOIN payloads p ON p.id = e.payload_id
WHERE e.rank = :rank AND e.status = 'ok' AND e.kind = 'chromium_event'
ORDER BY e.id
