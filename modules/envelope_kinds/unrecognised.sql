-- Kinds no catalogue row recognises, most frequent first.
SELECT kind, envelopes, first_line, with_payload, a_compile_id
FROM unrecognised_kinds
WHERE log_id = :log_id
ORDER BY envelopes DESC, kind
