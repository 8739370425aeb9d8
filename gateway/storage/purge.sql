-- Retention and erasure. Loaded with queries.sql (gateway/storage/queries.py).

-- name: purge_events_batch
-- One batch of the retention pass, walking events in id order (UUIDv7: time order) from
-- after $6 and below $7, the first id of the latest cutoff, so the primary key bounds the
-- scan and every batch starts where the previous one stopped. An event goes when none of
-- its deliveries is pending or in flight and it is older than its class's cutoff: dead
-- ($3, NULL = forever) when a delivery is dead, else delivered ($2), per source ($1);
-- $4/$5 for sources no longer in the config. $8 batch size, $9 dry run (count only).
-- The deliveries are locked first: a replay that reopened one before us is seen here,
-- and one that comes after finds the event gone, never half deleted.
WITH policy AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
        AS p (source, delivered_before, dead_before)
), scanned AS (
    SELECT e.id, e.source, e.received_at
    FROM hookgate.events AS e
    WHERE e.id > $6 AND e.id < $7
    ORDER BY e.id
    LIMIT $8
), locked AS (
    SELECT d.event_id, d.status
    FROM hookgate.deliveries AS d
    WHERE d.event_id IN (SELECT id FROM scanned)
    FOR UPDATE
), classified AS (
    SELECT s.id, s.received_at,
           EXISTS (SELECT FROM locked AS l
                   WHERE l.event_id = s.id AND l.status IN ('pending', 'in_flight', 'queued')) AS open,
           CASE WHEN EXISTS (SELECT FROM locked AS l WHERE l.event_id = s.id AND l.status = 'dead')
                THEN CASE WHEN p.source IS NULL THEN $5::timestamptz ELSE p.dead_before END
                ELSE coalesce(p.delivered_before, $4::timestamptz) END AS before
    FROM scanned AS s
    LEFT JOIN policy AS p ON p.source = s.source
), doomed AS (
    SELECT id FROM classified WHERE received_at < before AND NOT open
), deleted AS (
    DELETE FROM hookgate.events AS e
    USING doomed AS d
    WHERE e.id = d.id AND NOT $9::boolean
    RETURNING e.id
), gone_deliveries AS (
    -- No foreign keys between the partitioned tables (migration 0017): deleted here.
    DELETE FROM hookgate.deliveries AS d USING deleted AS x WHERE d.event_id = x.id
    RETURNING d.id, d.event_id
), gone_attempts AS (
    DELETE FROM hookgate.attempts AS a USING gone_deliveries AS g
    WHERE a.delivery_id = g.id AND a.event_id = g.event_id
)
SELECT (SELECT id FROM scanned ORDER BY id DESC LIMIT 1) AS last,  -- no max(uuid) in PG 15
       (SELECT count(*) FROM scanned) AS scanned,
       (SELECT count(*) FROM doomed) AS matched,
       (SELECT count(*) FROM classified WHERE received_at < before AND open) AS kept_open,
       (SELECT count(*) FROM deleted) AS deleted;

-- name: purge_rejected_and_keys
-- Refused requests older than their source's cutoff ($1/$2; $3 for other sources; $4 is
-- the latest of them all, so the received_at index bounds the scan), and dedupe keys
-- whose window ended before $5. $6 dry run: count only.
WITH policy AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS p (source, before)
), old AS (
    SELECT r.id
    FROM hookgate.rejected AS r
    LEFT JOIN policy AS p ON p.source = r.source
    WHERE r.received_at < $4 AND r.received_at < coalesce(p.before, $3)
), rejected AS (
    DELETE FROM hookgate.rejected AS r USING old WHERE r.id = old.id AND NOT $6::boolean
    RETURNING 1
), keys AS (
    DELETE FROM hookgate.dedupe WHERE expires_at < $5 AND NOT $6::boolean RETURNING 1
)
SELECT CASE WHEN $6 THEN (SELECT count(*) FROM old) ELSE (SELECT count(*) FROM rejected) END
           AS rejected,
       CASE WHEN $6 THEN (SELECT count(*) FROM hookgate.dedupe WHERE expires_at < $5)
            ELSE (SELECT count(*) FROM keys) END AS keys;

-- name: erasure_candidates
-- Explicit erasure pages through events in id order: after $1, received before $2 (its
-- first id), of source $3 (NULL: any). The caller decides on each (its --match looks into
-- headers and body, which may be encrypted), so this returns what it needs for that.
SELECT e.id, e.key_id, e.headers, e.body
FROM hookgate.events AS e
WHERE e.id > $1 AND e.id < $2 AND ($3::text IS NULL OR e.source = $3)
ORDER BY e.id
LIMIT $4;

-- name: erase_events
-- Delete the events $1 with their deliveries and attempts, except those with
-- a delivery pending or in flight, locked first as in purge_events_batch. $2 dry run.
WITH locked AS (
    SELECT d.event_id, d.status
    FROM hookgate.deliveries AS d
    WHERE d.event_id = ANY($1::uuid[])
    FOR UPDATE
), doomed AS (
    SELECT id FROM unnest($1::uuid[]) AS i (id)
    WHERE NOT EXISTS (SELECT FROM locked AS l
                      WHERE l.event_id = i.id AND l.status IN ('pending', 'in_flight', 'queued'))
), deleted AS (
    DELETE FROM hookgate.events AS e USING doomed AS d
    WHERE e.id = d.id AND NOT $2::boolean
    RETURNING e.id
), gone_deliveries AS (
    DELETE FROM hookgate.deliveries AS d USING deleted AS x WHERE d.event_id = x.id
    RETURNING d.id, d.event_id
), gone_attempts AS (
    DELETE FROM hookgate.attempts AS a USING gone_deliveries AS g
    WHERE a.delivery_id = g.id AND a.event_id = g.event_id
)
SELECT (SELECT count(*) FROM doomed) AS matched,
       cardinality($1::uuid[]) - (SELECT count(*) FROM doomed) AS kept_open,
       (SELECT count(*) FROM deleted) AS deleted;

-- name: insert_purge_audit
INSERT INTO hookgate.purges
    (at, kind, actor, criteria, dry_run, events, kept_open, rejected, dedupe_keys)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: try_purge_lock
-- One retention pass at a time across replicas; the others skip theirs.
SELECT pg_try_advisory_lock($1);

-- name: purge_unlock
SELECT pg_advisory_unlock($1);
