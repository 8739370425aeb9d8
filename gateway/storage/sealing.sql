-- Encryption keys and re-encryption (gateway/storage/sealing.py, rekey.py).

-- name: register_key
INSERT INTO hookgate.encryption_keys (key_id, registered_at) VALUES ($1, $2)
ON CONFLICT (key_id) DO NOTHING;

-- name: registered_keys
SELECT key_id FROM hookgate.encryption_keys;

-- name: forget_keys
-- After a complete rekey pass: no row is left on any key but $1 (NULL: none).
DELETE FROM hookgate.encryption_keys WHERE key_id IS DISTINCT FROM $1;

-- name: rekey_events_page
-- Events not on key $2, in id order after $1 (keyset: each page starts where the last
-- stopped, and the primary key walks the table once over the whole pass).
SELECT id, key_id, headers, body
FROM hookgate.events
WHERE id > $1 AND key_id IS DISTINCT FROM $2
ORDER BY id
LIMIT $3;

-- name: rekey_events
-- Rewrite each row only if it is still on the key it was read with ($5): a concurrent
-- rekey or erasure wins, and nothing is written twice.
UPDATE hookgate.events AS e
SET key_id = $2, headers = u.headers, body = u.body
FROM unnest($1::uuid[], $3::jsonb[], $4::bytea[], $5::text[]) AS u (id, headers, body, old_key)
WHERE e.id = u.id AND e.key_id IS NOT DISTINCT FROM u.old_key;

-- name: rekey_rejected_page
SELECT id, source, key_id, headers, body
FROM hookgate.rejected
WHERE id > $1 AND key_id IS DISTINCT FROM $2
ORDER BY id
LIMIT $3;

-- name: rekey_rejected
UPDATE hookgate.rejected AS r
SET key_id = $2, headers = u.headers, body = u.body
FROM unnest($1::bigint[], $3::jsonb[], $4::bytea[], $5::text[]) AS u (id, headers, body, old_key)
WHERE r.id = u.id AND r.key_id IS NOT DISTINCT FROM u.old_key;
