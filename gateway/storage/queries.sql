-- Every statement hookgate runs, by name. Loaded once by gateway/storage/queries.py.

-- name: insert_events
-- One statement, so one implicit transaction: the events and their deliveries commit
-- together or not at all. No NOTIFY here: Postgres holds a global lock from a NOTIFY
-- until its commit is flushed, which would serialise concurrent ingest commits.
-- An event with a dedupe key is stored only if it takes the key (new, or its window
-- expired by $17, now); the ids of those that did not are returned as duplicates.
WITH incoming AS (
    SELECT *
    FROM unnest(
        $1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
        $6::text[], $7::text[], $8::jsonb[], $9::bytea[], $10::text[],
        $15::text[], $16::timestamptz[], $18::jsonb[])
        AS i (id, source, event_type, received_at, method, path, query, headers, body, peer,
              dedupe_key, dedupe_until, routes)
), keys AS (
    INSERT INTO hookgate.dedupe AS k (source, key, event_id, expires_at)
    SELECT source, dedupe_key, id, dedupe_until FROM incoming WHERE dedupe_key IS NOT NULL
    ON CONFLICT (source, key) DO UPDATE
        SET event_id = excluded.event_id, expires_at = excluded.expires_at
        WHERE k.expires_at <= $17  -- the old key's window has ended
    RETURNING k.event_id
), accepted AS (
    SELECT * FROM incoming
    WHERE dedupe_key IS NULL OR id IN (SELECT event_id FROM keys)
), new_events AS (
    INSERT INTO hookgate.events
        (id, source, event_type, received_at, method, path, query, headers, body, peer, routes)
    SELECT id, source, event_type, received_at, method, path, query, headers, body, peer, routes
    FROM accepted
), new_deliveries AS (
    INSERT INTO hookgate.deliveries
        (id, event_id, target, due_at, created_at, updated_at, ordering_key, route)
    SELECT d.id, d.event_id, d.target, d.due_at, d.due_at, d.due_at, d.ordering_key, d.route
    FROM unnest($11::uuid[], $12::uuid[], $13::text[], $14::timestamptz[], $19::text[],
                $20::integer[])
        WITH ORDINALITY AS d (id, event_id, target, due_at, ordering_key, route, n)
    WHERE d.event_id IN (SELECT id FROM accepted)
    ORDER BY d.n  -- seq follows arrival order
)
SELECT i.id
FROM incoming AS i
WHERE i.id NOT IN (SELECT id FROM accepted);

-- name: dedupe_originals
-- The event that holds each (source, key); read after the duplicates' statement committed.
SELECT d.source, d.key, d.event_id
FROM hookgate.dedupe AS d
JOIN unnest($1::text[], $2::text[]) AS k (source, key)
    ON d.source = k.source AND d.key = k.key;

-- name: insert_rejected
INSERT INTO hookgate.rejected
    (source, received_at, status, reason, method, path, query, headers, body, peer)
SELECT * FROM unnest(
    $1::text[], $2::timestamptz[], $3::integer[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::jsonb[], $9::bytea[], $10::text[]);

-- name: purge_expired
-- Retention: refused requests older than $1, dedupe keys whose window ended before $2.
WITH rejected AS (
    DELETE FROM hookgate.rejected WHERE received_at < $1 RETURNING 1
), keys AS (
    DELETE FROM hookgate.dedupe WHERE expires_at < $2 RETURNING 1
)
SELECT (SELECT count(*) FROM rejected) AS rejected, (SELECT count(*) FROM keys) AS keys;

-- name: notify_deliveries
-- Wakes every listening relay; sent after commits, never inside them.
SELECT pg_notify('hookgate_deliveries', '');

-- name: ensure_targets
INSERT INTO hookgate.targets (name, changed_at)
SELECT name, $2 FROM unnest($1::text[]) AS t (name)
ON CONFLICT (name) DO NOTHING;

-- name: lock_targets
-- Serialises claims per target across every relay (in name order: no deadlocks), so the
-- in-flight count and the token bucket read next are the truth until this commits.
SELECT name, tokens, tokens_at, failures, breaker_until
FROM hookgate.targets
WHERE name = ANY($1::text[])
ORDER BY name
FOR UPDATE;

-- name: hold_probe
-- A half-open breaker lets one probe through: no other claim takes the target until it
-- has answered (or its lease ran out).
UPDATE hookgate.targets SET breaker_until = $2 WHERE name = ANY($1::text[]);

-- name: record_health
-- After a batch of attempts, per target: count consecutive failures (reset by an answer)
-- and failures over a tumbling window of attempts; open the breaker (until $2 + cooldown)
-- when either reaches its threshold, or when a probe of a tripped breaker fails; close it
-- on an answer. Returns the new state.
WITH s AS (
    SELECT *
    FROM unnest($1::text[], $3::boolean[], $4::integer[], $5::integer[], $6::double precision[],
                $7::text[], $8::integer[], $9::integer[], $10::integer[], $11::double precision[])
        AS s (name, reset, failed, threshold, cooldown, reason, attempts, failed_total,
              window_size, ratio)
), next AS (
    SELECT t.name, s.cooldown,
           CASE WHEN s.reset THEN s.failed ELSE t.failures + s.failed END AS failures,
           t.window_attempts + s.attempts AS seen,
           t.window_failures + s.failed_total AS bad,
           s.window_size, s.ratio, s.threshold, s.reset, s.failed, s.reason,
           t.breaker_until AS tripped
    FROM hookgate.targets AS t JOIN s ON s.name = t.name
    FOR UPDATE OF t
)
UPDATE hookgate.targets AS t
SET failures = n.failures,
    window_attempts = CASE WHEN n.window_size > 0 AND n.seen >= n.window_size THEN 0 ELSE n.seen END,
    window_failures = CASE WHEN n.window_size > 0 AND n.seen >= n.window_size THEN 0 ELSE n.bad END,
    breaker_until = CASE
        WHEN n.failures >= n.threshold
          OR (n.ratio > 0 AND n.window_size > 0 AND n.seen >= n.window_size
              AND n.bad >= n.ratio * n.seen)
          OR (n.tripped IS NOT NULL AND n.failed > 0 AND NOT n.reset)
            THEN $2::timestamptz + make_interval(secs => n.cooldown)
        WHEN n.reset THEN NULL
        ELSE t.breaker_until END,
    breaker_reason = CASE WHEN n.failed > 0 THEN n.reason ELSE t.breaker_reason END
FROM next AS n
WHERE t.name = n.name
RETURNING t.name, t.failures, t.breaker_until, t.breaker_reason;

-- name: in_flight
-- Deliveries being sent right now (a lease that ran out frees its slot).
SELECT target, count(*) AS n
FROM hookgate.deliveries
WHERE target = ANY($1::text[]) AND status = 'in_flight' AND due_at > $2
GROUP BY target;

-- name: spend_tokens
UPDATE hookgate.targets AS t
SET tokens = s.tokens, tokens_at = $3
FROM unnest($1::text[], $2::double precision[]) AS s (name, tokens)
WHERE t.name = s.name;

-- name: claim_deliveries
-- $1 targets, $2 how many each may take, $3 now, $4 lease seconds, $5 worker,
-- $6 per target: does a dead delivery block later ones with its ordering key.
-- Each target is looked up on its own (LATERAL), so a target with a large backlog
-- cannot fill the LIMIT and starve the others. An in_flight row whose lease ran out
-- is claimed again and its lost attempt is closed as LEASE_EXPIRED.
WITH wanted AS (
    SELECT d.id, d.status AS previous_status
    FROM unnest($1::text[], $2::integer[], $6::boolean[]) AS t (target, quota, block_on_dead)
    -- A paused target is skipped here, and only it: the others are looked up as usual.
    LEFT JOIN hookgate.targets AS state ON state.name = t.target
    CROSS JOIN LATERAL (
        SELECT c.id, c.status
        FROM hookgate.deliveries AS c
        WHERE c.target = t.target
          AND c.status IN ('pending', 'in_flight')
          AND c.due_at <= $3
          -- FIFO per ordering key: nothing else with the key in flight, nothing earlier
          -- waiting (or dead, when dead deliveries block their key).
          AND (c.ordering_key IS NULL OR NOT EXISTS (
              SELECT FROM hookgate.deliveries AS e
              WHERE e.target = c.target
                AND e.ordering_key = c.ordering_key
                AND e.id <> c.id
                AND ((e.status = 'in_flight' AND e.due_at > $3)
                     OR (e.seq < c.seq
                         AND (e.status IN ('pending', 'in_flight')
                              OR (e.status = 'dead' AND t.block_on_dead))))))
        ORDER BY c.due_at
        LIMIT t.quota
        FOR UPDATE OF c SKIP LOCKED
    ) AS d
    WHERE state.paused IS NOT TRUE
), claimed AS (
    UPDATE hookgate.deliveries AS d
    SET status = 'in_flight',
        attempts = d.attempts + 1,
        interruptions = d.interruptions + (w.previous_status = 'in_flight')::integer,
        due_at = $3::timestamptz + make_interval(secs => $4),
        worker = $5,
        updated_at = $3
    FROM wanted AS w
    WHERE d.id = w.id
    RETURNING d.id, d.event_id, d.target, d.attempts, d.interruptions, d.route,
              w.previous_status
), expired AS (
    UPDATE hookgate.attempts AS a
    SET outcome = 'LEASE_EXPIRED', error = 'the worker holding the lease stopped answering'
    FROM claimed AS c
    WHERE c.previous_status = 'in_flight'
      AND a.delivery_id = c.id AND a.attempt = c.attempts - 1 AND a.outcome IS NULL
), started AS (
    INSERT INTO hookgate.attempts (delivery_id, attempt, worker, started_at)
    SELECT id, attempts, $5, $3 FROM claimed
)
SELECT c.id, c.event_id, c.target, c.attempts, c.interruptions, c.route, e.source, e.event_type, e.received_at,
       e.headers, e.body, e.method, e.path, e.query
FROM claimed AS c
JOIN hookgate.events AS e ON e.id = c.event_id;

-- name: finish_attempts
-- Records each attempt whatever happened to its lease, but moves a delivery only if
-- this worker still holds it (same attempt number, still in flight). $11 is now.
WITH result AS (
    SELECT *
    FROM unnest($1::uuid[], $2::integer[], $3::double precision[], $4::text[],
                $5::integer[], $6::jsonb[], $7::bytea[], $8::text[], $9::text[],
                $10::timestamptz[], $12::boolean[])
        AS r (delivery_id, attempt, duration_ms, outcome, status_code, response_headers,
              response_body, error, next_status, next_due, interrupted)
), recorded AS (
    UPDATE hookgate.attempts AS a
    SET duration_ms = r.duration_ms, outcome = r.outcome, status_code = r.status_code,
        response_headers = r.response_headers, response_body = r.response_body,
        error = r.error
    FROM result AS r
    WHERE a.delivery_id = r.delivery_id AND a.attempt = r.attempt
)
UPDATE hookgate.deliveries AS d
SET status = r.next_status, due_at = r.next_due, last_outcome = r.outcome,
    last_error = r.error, worker = NULL, updated_at = $11,
    interruptions = d.interruptions + r.interrupted::integer
FROM result AS r
WHERE d.id = r.delivery_id AND d.attempts = r.attempt AND d.status = 'in_flight'
RETURNING d.id;

-- name: release_deliveries
-- Graceful shutdown: hand unfinished deliveries back at once instead of waiting out the lease.
WITH released AS (
    UPDATE hookgate.deliveries
    SET status = 'pending', due_at = $2, worker = NULL, updated_at = $2,
        interruptions = interruptions + 1
    WHERE id = ANY($1::uuid[]) AND worker = $3 AND status = 'in_flight'
    RETURNING id, attempts
)
UPDATE hookgate.attempts AS a
SET outcome = 'RELEASED', error = 'released unfinished at shutdown'
FROM released AS r
WHERE a.delivery_id = r.id AND a.attempt = r.attempts AND a.outcome IS NULL;

-- name: set_target_paused
-- Pause or resume a target for every relay; $2 true pauses. Resuming wakes the relays.
WITH state AS (
    INSERT INTO hookgate.targets AS t (name, paused, reason, changed_at, changed_by)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (name) DO UPDATE
        SET paused = excluded.paused, reason = excluded.reason,
            changed_at = excluded.changed_at, changed_by = excluded.changed_by
    RETURNING t.name
)
SELECT pg_notify('hookgate_deliveries', '') FROM state WHERE NOT $2;

-- name: target_states
SELECT t.name, coalesce(s.paused, false) AS paused, s.reason, s.changed_at, s.changed_by,
       coalesce(s.failures, 0) AS failures, s.breaker_until, s.breaker_reason,
       (SELECT count(*) FROM hookgate.deliveries AS d
        WHERE d.target = t.name AND d.status IN ('pending', 'in_flight')) AS backlog
FROM unnest($1::text[]) AS t (name)
LEFT JOIN hookgate.targets AS s ON s.name = t.name
ORDER BY t.name;

-- name: insert_proxy_answers
-- A proxy source's forward, made while the provider waited: its delivery is written
-- already finished (delivered or dead) with its one attempt, so no relay claims it.
WITH answer AS (
    SELECT *
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                $6::timestamptz[], $7::double precision[], $8::text[], $9::integer[],
                $10::jsonb[], $11::bytea[], $12::text[])
        AS a (id, event_id, target, status, started_at, finished_at, duration_ms, outcome,
              status_code, response_headers, response_body, error)
), delivery AS (
    INSERT INTO hookgate.deliveries
        (id, event_id, target, status, attempts, due_at, last_outcome, last_error,
         created_at, updated_at)
    SELECT id, event_id, target, status, 1, finished_at, outcome, error, started_at, finished_at
    FROM answer
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
INSERT INTO hookgate.attempts
    (delivery_id, attempt, worker, started_at, duration_ms, outcome, status_code,
     response_headers, response_body, error)
SELECT a.id, 1, $13, a.started_at, a.duration_ms, a.outcome, a.status_code,
       a.response_headers, a.response_body, a.error
FROM answer AS a
WHERE a.id IN (SELECT id FROM delivery);

-- name: get_event
SELECT id, source, event_type, received_at, method, path, query, headers, body, peer, routes
FROM hookgate.events
WHERE id = $1;

-- name: deliveries_for_event
SELECT id, event_id, target, status, attempts, interruptions, due_at, worker, last_outcome, last_error
FROM hookgate.deliveries
WHERE event_id = $1
ORDER BY target;

-- name: attempts_for_delivery
SELECT delivery_id, attempt, worker, started_at, duration_ms, outcome, status_code,
       response_headers, response_body, error
FROM hookgate.attempts
WHERE delivery_id = $1
ORDER BY attempt;

-- name: ping
SELECT 1;
