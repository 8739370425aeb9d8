-- What the inspector, the admin API and the CLI read and change. Loaded by gateway/storage/admin.py.
--
-- Lists take every filter as "$n IS NULL OR ...": one static statement (and plan shape)
-- whatever the caller asks, so no SQL is ever assembled from strings. Event ids are
-- UUIDv7 and delivery ids keep their event's first 64 bits, so a time range arrives as
-- id bounds and walks the primary key; pages are "ids below the cursor", newest first.

-- name: list_events
-- $1 source, $2 type (a '*' is a wildcard), $3 since and $4 until (as id bounds),
-- $5 cursor, $6 target, $7 status of its deliveries (dead: any dead; pending: any
-- pending, queued or in flight; delivered: at least one delivered and all delivered or
-- filtered), $8 text in the body or a header value, $9 page size.
SELECT e.id, e.source, e.event_type, e.received_at, e.method, e.path, octet_length(e.body) AS size,
       e.peer,
       coalesce((
           SELECT jsonb_agg(jsonb_build_object(
                      'id', x.id, 'target', x.target, 'status', x.status,
                      'attempts', x.attempts, 'last_outcome', x.last_outcome)
                  ORDER BY x.target)
           FROM hookgate.deliveries AS x WHERE x.event_id = e.id), '[]') AS deliveries
FROM hookgate.events AS e
WHERE ($1::text IS NULL OR e.source = $1)
  AND ($2::text IS NULL OR e.event_type LIKE
       replace(replace(replace(replace($2, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'))
  AND ($3::uuid IS NULL OR e.id >= $3)
  AND ($4::uuid IS NULL OR e.id < $4)
  AND ($5::uuid IS NULL OR e.id < $5)
  AND ($6::text IS NULL OR EXISTS (
      SELECT FROM hookgate.deliveries AS t WHERE t.event_id = e.id AND t.target = $6))
  AND ($7::text IS NULL
       OR ($7 = 'dead' AND EXISTS (
           SELECT FROM hookgate.deliveries AS s WHERE s.event_id = e.id AND s.status = 'dead'))
       OR ($7 = 'pending' AND EXISTS (
           SELECT FROM hookgate.deliveries AS s
           WHERE s.event_id = e.id AND s.status IN ('pending', 'in_flight', 'queued')))
       OR ($7 = 'delivered'
           AND EXISTS (SELECT FROM hookgate.deliveries AS s
                       WHERE s.event_id = e.id AND s.status = 'delivered')
           AND NOT EXISTS (SELECT FROM hookgate.deliveries AS s
                           WHERE s.event_id = e.id
                             AND s.status NOT IN ('delivered', 'filtered'))))
  AND ($8::text IS NULL
       OR position(convert_to($8, 'UTF8') IN e.body) > 0
       OR EXISTS (SELECT FROM jsonb_array_elements(e.headers) AS h
                  WHERE strpos(lower(h ->> 1), lower($8)) > 0))
ORDER BY e.id DESC
LIMIT $9;

-- name: admin_event
SELECT id, source, event_type, received_at, method, path, query, headers, body, peer, routes,
       key_id
FROM hookgate.events
WHERE id = $1;

-- name: event_deliveries
SELECT id, event_id, target, status, attempts, interruptions, budget_from, due_at, worker,
       last_outcome, last_error, created_at, updated_at, ordering_key, released_key, route
FROM hookgate.deliveries
WHERE event_id = $1
ORDER BY target;

-- name: delivery_attempts
-- The attempts of several deliveries at once (one event's), oldest first.
SELECT delivery_id, attempt, worker, started_at, duration_ms, outcome, status_code,
       response_headers, response_body, error
FROM hookgate.attempts
WHERE delivery_id = ANY($1::uuid[])
ORDER BY delivery_id, attempt;

-- name: delivery_replays
-- Each replay that re-queued these deliveries: which, who, when, and what came before.
SELECT r.delivery_id, r.replay_id, p.created_at, p.created_by, p.new_key, r.previous_id,
       r.previous_status, r.attempts_before
FROM hookgate.replayed AS r
JOIN hookgate.replays AS p ON p.id = r.replay_id
WHERE r.delivery_id = ANY($1::uuid[])
ORDER BY p.created_at, p.id;

-- name: list_deliveries
-- The dead-letter queue (or any status): $1 status, $2 target, $3 since (an id bound),
-- $4 cursor, $5 page size. deliveries_dead_idx serves the dead ones per target.
SELECT d.id, d.event_id, d.target, d.status, d.attempts, d.last_outcome, d.last_error,
       d.due_at, d.updated_at, e.source, e.event_type, e.received_at
FROM hookgate.deliveries AS d
JOIN hookgate.events AS e ON e.id = d.event_id
WHERE ($1::text IS NULL OR d.status = $1)
  AND ($2::text IS NULL OR d.target = $2)
  AND ($3::uuid IS NULL OR d.id >= $3)
  AND ($4::uuid IS NULL OR d.id < $4)
ORDER BY d.id DESC
LIMIT $5;

-- name: list_rejected
-- The rejected-request log: $1 source, $2 since, $3 cursor (an id), $4 page size.
SELECT id, source, received_at, status, reason, method, path, query, headers, body, peer,
       key_id
FROM hookgate.rejected
WHERE ($1::text IS NULL OR source = $1)
  AND ($2::timestamptz IS NULL OR received_at >= $2)
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4;

-- name: target_stats
-- $1 target names, $2 now, $3 an hour ago. Backlog counts come from the claim index
-- (pending, in_flight), the queued index (bulk replays waiting) and the dead index; success and latency from the attempts
-- started in the hour (attempts_started_at_idx) that have finished. HTTP_2XX and ACKED
-- are the outcomes that deliver (gateway/contract/outcome.py DELIVERED).
WITH names AS (
    SELECT unnest($1::text[]) AS name
), backlog AS (
    SELECT target,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'pending' AND due_at <= $2) AS due,
           count(*) FILTER (WHERE status = 'in_flight') AS in_flight
    FROM hookgate.deliveries
    WHERE status IN ('pending', 'in_flight') AND target = ANY($1::text[])
    GROUP BY target
), queued AS (
    SELECT target, count(*) AS queued
    FROM hookgate.deliveries
    WHERE status = 'queued' AND target = ANY($1::text[])
    GROUP BY target
), dead AS (
    SELECT target, count(*) AS dead,
           count(DISTINCT ordering_key) AS dead_keys
    FROM hookgate.deliveries
    WHERE status = 'dead' AND target = ANY($1::text[])
    GROUP BY target
), recent AS (
    SELECT d.target, count(*) AS attempts,
           count(*) FILTER (WHERE a.outcome IN ('HTTP_2XX', 'ACKED')) AS succeeded,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms) AS p50_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms) AS p95_ms
    FROM hookgate.attempts AS a
    JOIN hookgate.deliveries AS d ON d.id = a.delivery_id
    WHERE a.started_at >= $3 AND a.outcome IS NOT NULL AND d.target = ANY($1::text[])
    GROUP BY d.target
)
SELECT n.name,
       coalesce(b.pending, 0) AS pending, coalesce(b.due, 0) AS due,
       coalesce(b.in_flight, 0) AS in_flight, coalesce(q.queued, 0) AS queued,
       coalesce(x.dead, 0) AS dead,
       coalesce(x.dead_keys, 0) AS dead_keys,
       coalesce(r.attempts, 0) AS attempts, coalesce(r.succeeded, 0) AS succeeded,
       r.p50_ms, r.p95_ms,
       coalesce(s.paused, false) AS paused, s.reason, s.changed_at, s.changed_by,
       coalesce(s.failures, 0) AS failures, s.breaker_until, s.breaker_reason
FROM names AS n
LEFT JOIN backlog AS b ON b.target = n.name
LEFT JOIN queued AS q ON q.target = n.name
LEFT JOIN dead AS x ON x.target = n.name
LEFT JOIN recent AS r ON r.target = n.name
LEFT JOIN hookgate.targets AS s ON s.name = n.name
ORDER BY n.name;

-- name: blocked_keys
-- FIFO keys of $1 with a dead delivery, and how many deliveries wait behind each.
SELECT d.ordering_key AS key, count(*) AS dead,
       (SELECT count(*) FROM hookgate.deliveries AS w
        WHERE w.target = $1 AND w.ordering_key = d.ordering_key
          AND w.status IN ('pending', 'in_flight')) AS waiting
FROM hookgate.deliveries AS d
WHERE d.target = $1 AND d.status = 'dead' AND d.ordering_key IS NOT NULL
GROUP BY d.ordering_key
ORDER BY d.ordering_key
LIMIT $2;

-- name: dashboard_series
-- Per minute from $1 (a minute boundary) to $2: events received (by id: $3 is $1 as a
-- UUIDv7 bound) and attempts finished, split into delivered and failed.
WITH minutes AS (
    SELECT generate_series($1::timestamptz, $2::timestamptz, interval '1 minute') AS minute
), ingested AS (
    SELECT date_trunc('minute', received_at) AS minute, count(*) AS n
    FROM hookgate.events
    WHERE id >= $3
    GROUP BY 1
), sent AS (
    SELECT date_trunc('minute', started_at) AS minute,
           count(*) FILTER (WHERE outcome IN ('HTTP_2XX', 'ACKED')) AS delivered,
           count(*) FILTER (WHERE outcome NOT IN ('HTTP_2XX', 'ACKED')) AS failed
    FROM hookgate.attempts
    WHERE started_at >= $1 AND outcome IS NOT NULL
    GROUP BY 1
)
SELECT m.minute, coalesce(i.n, 0) AS ingested, coalesce(s.delivered, 0) AS delivered,
       coalesce(s.failed, 0) AS failed
FROM minutes AS m
LEFT JOIN ingested AS i ON i.minute = m.minute
LEFT JOIN sent AS s ON s.minute = m.minute
ORDER BY m.minute;

-- name: replay_settings
-- For the replay's transaction only: JIT-compiling the one big statement costs more
-- than it saves (it showed up as hundreds of milliseconds in EXPLAIN ANALYZE).
SET LOCAL jit = off;

-- name: insert_replay
INSERT INTO hookgate.replays
    (id, created_at, created_by, dry_run, event_id, filter, targets, new_key, deliveries,
     by_target, sample)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, '{}', '[]');

-- name: finish_replay
UPDATE hookgate.replays SET deliveries = $2, by_target = $3, sample = $4 WHERE id = $1;

-- name: replay_matching
-- Bulk replay, set-based: every delivery matching the filter is re-queued by this one
-- statement. $1 replay id, $2 now, $3 new_key, then the filter: $4 source, $5 type,
-- $6 delivery status, $7 targets, $8 last outcome, $9 since and $10 until (id bounds),
-- $11 text.
-- Fair to live traffic without touching the claim: they become `queued`, which the
-- claim never looks at (nor its index); release_replays moves them to pending a few at a
-- time, only while their target has room, so a fresh delivery waits behind a handful of
-- replayed ones at most. In-flight deliveries are left alone; rows a claim holds are
-- skipped. A fresh retry budget: the schedule counts attempts after budget_from; the
-- attempts themselves stay. new_key mints an id (keeping the first 64 bits, its time)
-- and moves the delivery's attempts to it. A dry run is this statement rolled back.
WITH matched AS (
    SELECT d.id, d.target, d.status, d.attempts
    FROM hookgate.deliveries AS d
    JOIN hookgate.events AS e ON e.id = d.event_id
    WHERE d.status <> 'in_flight'
      AND ($4::text IS NULL OR e.source = $4)
      AND ($5::text IS NULL OR e.event_type LIKE
           replace(replace(replace(replace($5, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'))
      AND ($6::text IS NULL OR d.status = $6)
      AND ($7::text[] IS NULL OR d.target = ANY($7))
      AND ($8::text IS NULL OR d.last_outcome = $8)
      AND ($9::uuid IS NULL OR d.id >= $9)
      AND ($10::uuid IS NULL OR d.id < $10)
      AND ($11::text IS NULL
           OR position(convert_to($11, 'UTF8') IN e.body) > 0
           OR EXISTS (SELECT FROM jsonb_array_elements(e.headers) AS h
                      WHERE strpos(lower(h ->> 1), lower($11)) > 0))
    FOR UPDATE OF d SKIP LOCKED
), requeued AS (
    UPDATE hookgate.deliveries AS d
    SET status = 'queued', due_at = $2, budget_from = d.attempts, interruptions = 0,
        worker = NULL, updated_at = $2,
        id = CASE WHEN $3 THEN encode(overlay(uuid_send(d.id) PLACING
                 substring(uuid_send(gen_random_uuid()) FROM 9 FOR 8) FROM 9), 'hex')::uuid
             ELSE d.id END
    FROM matched AS m
    WHERE d.id = m.id
    RETURNING d.id, d.event_id, m.id AS previous_id, m.target, m.status AS previous_status,
              m.attempts
), lowered AS (
    -- Open again, maybe on a day before the open floor (migration 0024): lowered to it.
    UPDATE hookgate.open_floor AS f
    SET floor = least(f.floor, r.low)
    FROM (SELECT event_id AS low FROM requeued ORDER BY 1 LIMIT 1) AS r  -- no min(uuid)
    WHERE r.low IS NOT NULL
), moved AS (
    -- new_key: the attempts go with the new id (the foreign key is checked at the end
    -- of the statement, when both have moved).
    UPDATE hookgate.attempts AS a
    SET delivery_id = r.id
    FROM requeued AS r
    WHERE $3 AND a.delivery_id = r.previous_id
), audit AS (
    INSERT INTO hookgate.replayed
        (replay_id, delivery_id, previous_id, previous_status, attempts_before)
    SELECT $1, id, CASE WHEN id <> previous_id THEN previous_id END, previous_status, attempts
    FROM requeued
)
SELECT target, count(*) AS n, (array_agg(id ORDER BY id DESC))[1:10] AS sample
FROM requeued
GROUP BY target
ORDER BY target;

-- name: release_replays
-- The replay feeder, every tick: per target ($1, with $2 its window), move queued
-- deliveries to pending (due now, $3) while fewer than the window are due or in flight,
-- oldest first. Due and in-flight rows are counted on the claim index; queued ones are
-- taken from their own (deliveries_queued_idx). Only one feeder acts per tick across
-- replicas (the advisory lock); the others find nothing to do.
WITH feeder AS (
    SELECT pg_try_advisory_xact_lock(7238516079) AS mine
), room AS (
    SELECT t.target, t.size - (
        SELECT count(*) FROM hookgate.deliveries AS b
        WHERE b.target = t.target
          AND ((b.status = 'pending' AND b.due_at <= $3) OR b.status = 'in_flight')) AS free
    FROM unnest($1::text[], $2::integer[]) AS t (target, size), feeder
    WHERE feeder.mine
), chosen AS (
    SELECT q.id
    FROM room AS r
    CROSS JOIN LATERAL (
        SELECT c.id FROM hookgate.deliveries AS c
        WHERE c.target = r.target AND c.status = 'queued'
        ORDER BY c.seq
        LIMIT greatest(r.free, 0)
        FOR UPDATE OF c SKIP LOCKED
    ) AS q
), released AS (
    UPDATE hookgate.deliveries AS d
    SET status = 'pending', due_at = $3, updated_at = $3
    FROM chosen AS c
    WHERE d.id = c.id
    RETURNING d.target
)
SELECT (SELECT count(*) FROM released) AS released,
       (SELECT count(*) FROM hookgate.deliveries WHERE status = 'queued') > 0 AS more;

-- name: replay_event
-- One event's deliveries to $5 targets re-queued, due now ($2), with a fresh budget;
-- $1 replay id, $3 new_key, $4 event. Same SET as replay_matching.
WITH chosen AS (
    SELECT d.id, d.target, d.status, d.attempts
    FROM hookgate.deliveries AS d
    WHERE d.event_id = $4 AND d.target = ANY($5::text[]) AND d.status <> 'in_flight'
    FOR UPDATE OF d
), requeued AS (
    UPDATE hookgate.deliveries AS d
    SET status = 'pending', due_at = $2, budget_from = d.attempts, interruptions = 0,
        worker = NULL, updated_at = $2,
        id = CASE WHEN $3 THEN encode(overlay(uuid_send(d.id) PLACING
                 substring(uuid_send(gen_random_uuid()) FROM 9 FOR 8) FROM 9), 'hex')::uuid
             ELSE d.id END
    FROM chosen AS c
    WHERE d.id = c.id
    RETURNING d.id, c.id AS previous_id, c.target, c.status AS previous_status, c.attempts
), lowered AS (
    -- Open again, maybe on a day before the open floor (migration 0024): lowered to it.
    UPDATE hookgate.open_floor AS f
    SET floor = least(f.floor, $4)
    WHERE EXISTS (SELECT FROM requeued)
), moved AS (
    UPDATE hookgate.attempts AS a
    SET delivery_id = r.id
    FROM requeued AS r
    WHERE $3 AND a.delivery_id = r.previous_id
), audit AS (
    INSERT INTO hookgate.replayed
        (replay_id, delivery_id, previous_id, previous_status, attempts_before)
    SELECT $1, id, CASE WHEN id <> previous_id THEN previous_id END, previous_status, attempts
    FROM requeued
)
SELECT target, count(*) AS n, array_agg(id) AS sample
FROM requeued
GROUP BY target
ORDER BY target;

-- name: add_deliveries
-- A replay to targets the event never had (back-filling a new service): new deliveries
-- with ids from (event, target), due now. $1 replay id, $2 now, $3 event, $4 targets,
-- $5 their ids. A target it already has (even in flight) is left to replay_event.
WITH added AS (
    INSERT INTO hookgate.deliveries (id, event_id, target, due_at, created_at, updated_at)
    SELECT t.id, $3, t.target, $2, $2, $2
    FROM unnest($4::text[], $5::uuid[]) AS t (target, id)
    ON CONFLICT DO NOTHING
    RETURNING id, target
), lowered AS (
    -- New and open, maybe on a day before the open floor (migration 0024): lowered to it.
    UPDATE hookgate.open_floor AS f
    SET floor = least(f.floor, $3)
    WHERE EXISTS (SELECT FROM added)
), audit AS (
    INSERT INTO hookgate.replayed (replay_id, delivery_id, attempts_before)
    SELECT $1, id, 0 FROM added
)
SELECT target, count(*) AS n, array_agg(id) AS sample
FROM added
GROUP BY target
ORDER BY target;

-- name: list_replays
-- Every replay, dry or real, newest first (ids are UUIDv7). $1 cursor, $2 page size.
SELECT id, created_at, created_by, dry_run, event_id, filter, targets, new_key, deliveries,
       by_target, sample
FROM hookgate.replays
WHERE ($1::uuid IS NULL OR id < $1)
ORDER BY id DESC
LIMIT $2;

-- name: get_replay
SELECT id, created_at, created_by, dry_run, event_id, filter, targets, new_key, deliveries,
       by_target, sample
FROM hookgate.replays
WHERE id = $1;

-- name: replayed_deliveries
-- The deliveries a replay re-queued, and where they are now: $1 replay, $2 cursor, $3 size.
SELECT r.delivery_id, r.previous_id, r.previous_status, r.attempts_before,
       d.event_id, d.target, d.status, d.attempts
FROM hookgate.replayed AS r
LEFT JOIN hookgate.deliveries AS d ON d.id = r.delivery_id
WHERE r.replay_id = $1 AND ($2::uuid IS NULL OR r.delivery_id < $2)
ORDER BY r.delivery_id DESC
LIMIT $3;

-- name: cancel_delivery
-- A pending or queued delivery (not one being sent) ends cancelled; returns its status before.
WITH before AS (
    SELECT status FROM hookgate.deliveries WHERE id = $1 FOR UPDATE
), cancelled AS (
    UPDATE hookgate.deliveries
    SET status = 'cancelled', last_outcome = 'CANCELLED', last_error = $3, worker = NULL,
        updated_at = $2
    WHERE id = $1 AND status IN ('pending', 'queued')
    RETURNING id
)
SELECT (SELECT status FROM before) AS status, EXISTS (SELECT FROM cancelled) AS cancelled;

-- name: release_key
-- Dead deliveries of (target $1, FIFO key $2) stop holding back later ones: they leave
-- the ordering (the claim only looks at ordering_key) and keep the key in released_key.
WITH released AS (
    UPDATE hookgate.deliveries
    SET released_key = ordering_key, ordering_key = NULL, updated_at = $3
    WHERE target = $1 AND ordering_key = $2 AND status = 'dead'
    RETURNING id
)
SELECT count(*) AS n FROM released;

-- name: events_after
-- The live stream: events with an id above $1 (a lookback bound: group commit may make
-- an older id visible after a newer one), $2 source, oldest first, $3 at most.
SELECT id, source, event_type, received_at, method, path, octet_length(body) AS size
FROM hookgate.events
WHERE id > $1 AND ($2::text IS NULL OR source = $2)
ORDER BY id
LIMIT $3;

-- name: attempts_after
-- The live stream: attempts started after $1 that have finished (attempts_started_at_idx);
-- the caller remembers what it already sent. $2 source, $3 at most: the latest ones.
SELECT a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.outcome, a.status_code,
       a.error, d.event_id, d.target, d.status, e.source
FROM hookgate.attempts AS a
JOIN hookgate.deliveries AS d ON d.id = a.delivery_id
JOIN hookgate.events AS e ON e.id = d.event_id
WHERE a.started_at > $1 AND a.outcome IS NOT NULL AND ($2::text IS NULL OR e.source = $2)
ORDER BY a.started_at DESC
LIMIT $3;

