-- Every statement hookgate runs, by name. Loaded once by gateway/storage/queries.py.

-- name: insert_events
-- One statement, so one implicit transaction: the events and their deliveries commit
-- together or not at all. No NOTIFY here: Postgres holds a global lock from a NOTIFY
-- until its commit is flushed, which would serialise concurrent ingest commits.
-- An event with a dedupe key is stored only if it takes the key (new, or its window
-- expired by $4, now); the ids of those that did not are returned as duplicates. The
-- batch comes as `insert_events_plain`'s does (below), its events with their dedupe
-- key and window.
WITH incoming AS (
    SELECT *
    FROM ROWS FROM (
        json_to_recordset($1::json) AS (
            id uuid, source text, event_type text, received_at timestamptz, method text,
            path text, query text, headers jsonb, peer text, routes jsonb, key_id text,
            traceparent text, dedupe_key text, dedupe_until timestamptz),
        unnest($3::bytea[]))
        WITH ORDINALITY AS i (id, source, event_type, received_at, method, path, query,
                              headers, peer, routes, key_id, traceparent, dedupe_key,
                              dedupe_until, body, n)
), keys AS (
    INSERT INTO hookgate.dedupe AS k (source, key, event_id, expires_at)
    SELECT source, dedupe_key, id, dedupe_until FROM incoming WHERE dedupe_key IS NOT NULL
    -- In one global order: two replicas' batches sharing keys wait for each other's key
    -- in the same order, so they queue instead of deadlocking.
    ORDER BY source, dedupe_key
    ON CONFLICT (source, key) DO UPDATE
        SET event_id = excluded.event_id, expires_at = excluded.expires_at
        WHERE k.expires_at <= $4  -- the old key's window has ended
    RETURNING k.event_id
), accepted AS (
    SELECT * FROM incoming
    WHERE dedupe_key IS NULL OR id IN (SELECT event_id FROM keys)
), new_events AS (
    INSERT INTO hookgate.events
        (id, source, event_type, received_at, method, path, query, headers, body, peer, routes,
         key_id, traceparent)
    SELECT id, source, event_type, received_at, method, path, query, headers, body, peer, routes,
           key_id, traceparent
    FROM accepted
), new_deliveries AS (
    INSERT INTO hookgate.deliveries
        (id, event_id, target, due_at, created_at, updated_at, ordering_key, route)
    SELECT d.id, e.id, d.target, e.received_at, e.received_at, e.received_at, d.ordering_key,
           d.route
    FROM ROWS FROM (json_to_recordset($2::json)
            AS (id uuid, event integer, target text, ordering_key text, route integer))
        WITH ORDINALITY AS d (id, event, target, ordering_key, route, n)
    JOIN accepted AS e ON e.n = d.event
    ORDER BY d.n  -- seq follows arrival order
)
SELECT i.id
FROM incoming AS i
WHERE i.id NOT IN (SELECT id FROM accepted);

-- name: insert_events_plain
-- `insert_events` for a batch in which no event carries a dedupe key (the usual case):
-- no dedupe step, no ON CONFLICT. The batch comes as JSON texts, its events ($1) and
-- their deliveries ($2, each with its event's 1-based position), and the bodies as one
-- bytea array ($3, in event order): asyncpg encodes arrays element by element in the
-- ingest process, whose one core is the ingest's limit, while Postgres reads JSON on
-- another. Deliveries take their event's received_at as due time.
WITH batch AS (
    SELECT *
    FROM ROWS FROM (
        json_to_recordset($1::json) AS (
            id uuid, source text, event_type text, received_at timestamptz, method text,
            path text, query text, headers jsonb, peer text, routes jsonb, key_id text,
            traceparent text),
        unnest($3::bytea[]))
        WITH ORDINALITY AS b (id, source, event_type, received_at, method, path, query,
                              headers, peer, routes, key_id, traceparent, body, n)
), new_events AS (
    INSERT INTO hookgate.events
        (id, source, event_type, received_at, method, path, query, headers, body, peer, routes,
         key_id, traceparent)
    SELECT id, source, event_type, received_at, method, path, query, headers, body, peer,
           routes, key_id, traceparent
    FROM batch
)
INSERT INTO hookgate.deliveries
    (id, event_id, target, due_at, created_at, updated_at, ordering_key, route)
SELECT d.id, e.id, d.target, e.received_at, e.received_at, e.received_at, d.ordering_key,
       d.route
FROM ROWS FROM (json_to_recordset($2::json)
        AS (id uuid, event integer, target text, ordering_key text, route integer))
    WITH ORDINALITY AS d (id, event, target, ordering_key, route, n)
JOIN batch AS e ON e.n = d.event
ORDER BY d.n;  -- seq follows arrival order

-- name: dedupe_originals
-- The event that holds each (source, key); read after the duplicates' statement committed.
SELECT d.source, d.key, d.event_id
FROM hookgate.dedupe AS d
JOIN unnest($1::text[], $2::text[]) AS k (source, key)
    ON d.source = k.source AND d.key = k.key;

-- name: insert_rejected
INSERT INTO hookgate.rejected
    (source, received_at, status, reason, method, path, query, headers, body, peer, key_id)
SELECT * FROM unnest(
    $1::text[], $2::timestamptz[], $3::integer[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::jsonb[], $9::bytea[], $10::text[], $11::text[]);

-- name: notify_deliveries
-- Wakes every listening relay; sent after commits, never inside them. Its own implicit
-- transaction commits without waiting for the disk (set_config local to it): nothing
-- durable depends on a NOTIFY, and the relays poll if one is lost.
SELECT set_config('synchronous_commit', 'off', true), pg_notify('hookgate_deliveries', '');

-- name: ensure_targets
INSERT INTO hookgate.targets (name, changed_at)
SELECT name, $2 FROM unnest($1::text[]) AS t (name)
ON CONFLICT (name) DO NOTHING;

-- name: claim_deliveries
-- One statement, one round trip: flow control, the claim, its bookkeeping and the
-- events. $1 targets, $2 how many each may take, $3 now, $4 lease seconds, $5 worker,
-- $6 per target: does a dead delivery block later ones with its ordering key; $7..$10
-- per target: concurrency, rate, burst, breaker on (NULL concurrency/rate: no limit);
-- $11 per target: does this relay hold a share of its concurrency (migration 0022; then
-- it keeps within its share, and the target is neither counted nor, unless its rate
-- limit or a tripped breaker needs it, locked); $12 the open floor (migration 0024): no
-- open delivery's event id is lower, so the day partitions before it are not even
-- started (the pruning happens at start-up, the floor being a parameter).
-- `claim_allowance` (migrations 0010, 0022) runs first: it takes the advisory locks the
-- targets need and says how many each may start. Then each target is looked up on its own
-- (LATERAL, by the claim index), so one target's backlog cannot fill another's quota.
-- A row whose lease ran out is claimed again, and its lost attempt is written now, as
-- LEASE_EXPIRED, from what the row still says (its attempt number, worker and claim
-- time): attempts are otherwise written only when they finish.
-- Events are fetched last, per claimed row, by primary key (a LATERAL with OFFSET 0
-- cannot be flattened, so it is a nested loop over the events' index whatever the
-- estimates say): the cost never depends on how many events are stored.
-- The final row (id NULL) says when the earliest delivery not claimed now comes due,
-- or what held a target back ends, so the relay can sleep until then; how many
-- each target was allowed; and the open floor for the next claim.
WITH allowance AS (
    SELECT *
    FROM hookgate.claim_allowance($1::text[], $2::integer[], $3, $7::integer[],
                                  $8::double precision[], $9::double precision[], $10::boolean[],
                                  $4, $11::boolean[])
), wanted AS (
    SELECT d.id, d.event_id, d.status AS previous_status, d.worker AS previous_worker,
           d.updated_at AS previous_start
    FROM allowance AS a
    JOIN unnest($1::text[], $6::boolean[]) AS t (target, block_on_dead) ON t.target = a.target
    CROSS JOIN LATERAL (
        SELECT c.id, c.event_id, c.status, c.worker, c.updated_at
        FROM hookgate.deliveries AS c
        WHERE c.target = t.target
          AND c.status IN ('pending', 'in_flight')
          AND c.due_at <= $3
          AND c.event_id >= $12
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
        LIMIT a.allowed
        FOR UPDATE OF c SKIP LOCKED
    ) AS d
    WHERE a.allowed > 0
), claimed AS (
    UPDATE hookgate.deliveries AS d
    SET status = 'in_flight',
        attempts = d.attempts + 1,
        interruptions = d.interruptions + (w.previous_status = 'in_flight')::integer,
        due_at = $3::timestamptz + make_interval(secs => $4),
        worker = $5,
        updated_at = $3
    FROM wanted AS w
    -- Each row by its full key, the event's id (the partition key) included, in a nested
    -- loop that prunes, as it runs, every day partition but the row's own (0021): the
    -- same few buffers whatever the days of history kept. The key is matched as ranges,
    -- not with `=`, so that no hash or merge join is possible: under the generic plan
    -- (the relay's, RELAY_SESSION) `wanted` is estimated at thousands of rows, and with
    -- `=` the planner hash-joined it with the whole table, or, given
    -- `d.id = ANY (ARRAY(SELECT id FROM wanted))`, with a probe for every id in every
    -- day's key index. (`event_id = ANY` of an array known only at run time prunes
    -- nothing.) IS NOT DISTINCT FROM, which no join method but the nested loop can use,
    -- is there for the estimate: a row per wanted row, as `=` would give, where the four
    -- ranges alone are taken for millions (and the rest of the plan costed on them).
    WHERE d.id >= w.id AND d.id <= w.id
      AND d.event_id >= w.event_id AND d.event_id <= w.event_id
      AND d.id IS NOT DISTINCT FROM w.id
    -- (Not `d.event_id >= $12` here: given a bound it can use alone, the planner chose a
    -- scan of every partition joined to `wanted` again.)
    RETURNING d.id, d.event_id, d.target, d.attempts, d.interruptions, d.route,
              d.budget_from, w.previous_status, w.previous_worker, w.previous_start
), expired AS (
    INSERT INTO hookgate.attempts
        (delivery_id, event_id, attempt, worker, started_at, outcome, error)
    SELECT id, event_id, attempts - 1, coalesce(previous_worker, 'unknown'), previous_start,
           'LEASE_EXPIRED', 'the worker holding the lease stopped answering'
    FROM claimed
    WHERE previous_status = 'in_flight'
    -- Its worker wrote it after all. The key includes event_id, the partition key (0017).
    ON CONFLICT (delivery_id, attempt, event_id) DO NOTHING
), spent AS (
    -- Rate-limited and probing targets: their tokens and probe, in the claims' own table
    -- (never in hookgate.targets, which results write). Only claims holding the
    -- target's advisory lock write its row, so this never waits.
    INSERT INTO hookgate.target_flow AS f (name, tokens, tokens_at, probe_at)
    SELECT a.target, a.tokens - coalesce(n.taken, 0), $3,
           CASE WHEN a.probe AND n.taken > 0 THEN $3::timestamptz END
    FROM allowance AS a
    LEFT JOIN (SELECT target, count(*) AS taken FROM claimed GROUP BY target) AS n
        ON n.target = a.target
    WHERE a.tokens IS NOT NULL OR (a.probe AND n.taken > 0)
    ON CONFLICT (name) DO UPDATE
        SET tokens = coalesce(excluded.tokens, f.tokens),
            -- Never backwards: a claim whose `now` was read before another relay's
            -- (it waited for the advisory lock) refilled nothing, and must not make the
            -- next claim refill that interval a second time.
            tokens_at = CASE WHEN excluded.tokens IS NULL THEN f.tokens_at
                             ELSE greatest(f.tokens_at, excluded.tokens_at) END,
            probe_at = coalesce(excluded.probe_at, f.probe_at)
)
SELECT c.id, c.event_id, c.target, c.attempts, c.interruptions, c.route, c.budget_from,
       e.source, e.event_type, e.received_at, e.headers, e.body, e.method, e.path, e.query,
       e.key_id, e.traceparent, NULL::timestamptz AS next_due, NULL::integer[] AS allowed,
       NULL::uuid AS floor
FROM claimed AS c
CROSS JOIN LATERAL (
    SELECT ev.source, ev.event_type, ev.received_at, ev.headers, ev.body, ev.method, ev.path,
           ev.query, ev.key_id, ev.traceparent
    FROM hookgate.events AS ev
    WHERE ev.id = c.event_id AND ev.id >= $12
    OFFSET 0
) AS e
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, least((SELECT min(a.next_at) FROM allowance AS a),
             (SELECT min(f.due_at)
              FROM allowance AS a
              CROSS JOIN LATERAL (
                  SELECT c.due_at
                  FROM hookgate.deliveries AS c
                  WHERE c.target = a.target
                    AND c.status IN ('pending', 'in_flight')
                    AND c.due_at > $3
                    AND c.event_id >= $12
                  ORDER BY c.due_at
                  LIMIT 1
              ) AS f)),
       -- How many each target ($1, in order) was allowed: a relay that took all it was
       -- allowed, and less than it asked for, was held back by a limit shared with other
       -- relays (their deliveries in flight), so it claims again as its own slots free up.
       ARRAY(SELECT coalesce(a.allowed, 0)
             FROM unnest($1::text[]) WITH ORDINALITY AS q (target, n)
             LEFT JOIN allowance AS a ON a.target = q.target
             ORDER BY q.n),
       -- The floor for the next claim; NULL while housekeeping has not set one lately
       -- (or its row is gone): none.
       (SELECT f.floor FROM hookgate.open_floor AS f WHERE f.valid_until > $3);

-- name: finish_attempts
-- A batch of attempt results and what they say about their targets' health, in one
-- call and one transaction (see the function in migration 0010 for its lock order):
-- a claim that sees a slot freed also sees what that failure did to the breaker.
-- $1 now; $2..$14 per result; $15..$24 per target with a breaker; $25 per result, its
-- event's id (NULL: looked up), so each delivery is found in its day's partition (0021).
SELECT out_delivery, out_target, out_failures, out_until, out_reason
FROM hookgate.finish_attempts(
    $1, $2::uuid[], $3::integer[], $4::double precision[], $5::text[], $6::integer[],
    $7::jsonb[], $8::bytea[], $9::text[], $10::text[], $11::timestamptz[], $12::boolean[],
    $13::text[], $14::timestamptz[],
    $15::text[], $16::boolean[], $17::integer[], $18::integer[], $19::double precision[],
    $20::text[], $21::integer[], $22::integer[], $23::integer[], $24::double precision[],
    $25::uuid[]);

-- name: release_deliveries
-- Graceful shutdown: hand unfinished deliveries back at once instead of waiting out the
-- lease, and write their attempts (never written otherwise: they did not finish) as
-- RELEASED, started when they were claimed.
WITH released AS (
    UPDATE hookgate.deliveries AS d
    SET status = 'pending', due_at = $2, worker = NULL, updated_at = $2,
        interruptions = d.interruptions + 1
    FROM hookgate.deliveries AS old
    WHERE old.id = d.id AND old.event_id = d.event_id
      AND d.id = ANY($1::uuid[]) AND d.worker = $3 AND d.status = 'in_flight'
    RETURNING d.id, d.event_id, d.attempts, old.updated_at AS claimed_at
)
INSERT INTO hookgate.attempts
    (delivery_id, event_id, attempt, worker, started_at, outcome, error)
SELECT id, event_id, attempts, $3, claimed_at, 'RELEASED', 'released unfinished at shutdown'
FROM released
ON CONFLICT (delivery_id, attempt, event_id) DO NOTHING;  -- event_id: the partition key (0017)

-- name: unclaim_deliveries
-- Claimed ahead and never sent (gateway/relay/ahead.py): pending again as the claim found
-- them, its attempt undone and no attempt written (none was made), while this worker ($4)
-- still holds them at that attempt. A lost lease the claim wrote as LEASE_EXPIRED stays
-- written, and counted. $1 ids, $2 their events' ids (the partition key), $3 attempts.
UPDATE hookgate.deliveries AS d
SET status = 'pending', attempts = d.attempts - 1, worker = NULL, due_at = $5,
    updated_at = $5
FROM unnest($1::uuid[], $2::uuid[], $3::integer[]) AS u (id, event_id, attempt)
WHERE d.id = u.id AND d.event_id = u.event_id AND d.attempts = u.attempt
  AND d.worker = $4 AND d.status = 'in_flight';

-- name: set_target_paused
-- Pause or resume a target for every relay; $2 true pauses. Either wakes the relays: a
-- resumed target's deliveries go at once, and a relay holding some claimed ahead for a
-- paused one hears of it at its next claim (gateway/relay/ahead.py) and gives them back.
WITH state AS (
    INSERT INTO hookgate.targets AS t (name, paused, reason, changed_at, changed_by)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (name) DO UPDATE
        SET paused = excluded.paused, reason = excluded.reason,
            changed_at = excluded.changed_at, changed_by = excluded.changed_by
    RETURNING t.name
)
SELECT pg_notify('hookgate_deliveries', '') FROM state;

-- name: target_states
SELECT t.name, coalesce(s.paused, false) AS paused, s.reason, s.changed_at, s.changed_by,
       coalesce(s.failures, 0) AS failures, s.breaker_until, s.breaker_reason,
       (SELECT count(*) FROM hookgate.deliveries AS d
        WHERE d.target = t.name AND d.status IN ('pending', 'in_flight')) AS backlog,
       (SELECT count(*) FROM hookgate.deliveries AS d
        WHERE d.target = t.name AND d.status = 'queued') AS queued,
       (SELECT count(*) FROM hookgate.deliveries AS d
        WHERE d.target = t.name AND d.status = 'dead') AS dead
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
    ON CONFLICT (id, event_id) DO NOTHING  -- the key includes event_id, the partition key
    RETURNING id
)
INSERT INTO hookgate.attempts
    (delivery_id, event_id, attempt, worker, started_at, duration_ms, outcome, status_code,
     response_headers, response_body, error)
SELECT a.id, a.event_id, 1, $13, a.started_at, a.duration_ms, a.outcome, a.status_code,
       a.response_headers, a.response_body, a.error
FROM answer AS a
WHERE a.id IN (SELECT id FROM delivery);

-- name: get_event
SELECT id, source, event_type, received_at, method, path, query, headers, body, peer, routes,
       key_id
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

-- name: schema_version
-- The primary key's last entry: one index probe, cheap enough for every /readyz.
SELECT coalesce(max(version), 0) AS version FROM hookgate.migrations;

-- name: queue_gauges
-- Every scrape, from every replica: the backlog is read through the claim index (partial
-- on pending and in_flight) and dead letters through deliveries_dead_idx (0011), so the
-- cost follows the backlog and dead letters, never the delivered history. One row per
-- configured target ($2), zeros included, so a series does not vanish when it empties.
WITH backlog AS (
    SELECT target,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'pending' AND due_at <= $1) AS due,
           count(*) FILTER (WHERE status = 'in_flight') AS in_flight,
           min(due_at) FILTER (WHERE status = 'pending' AND due_at <= $1) AS oldest_due
    FROM hookgate.deliveries
    WHERE status IN ('pending', 'in_flight') AND target = ANY($2::text[])
    GROUP BY target
), dead AS (
    SELECT target, count(*) AS dead
    FROM hookgate.deliveries
    WHERE status = 'dead' AND target = ANY($2::text[])
    GROUP BY target
)
SELECT t.name,
       coalesce(b.pending, 0) AS pending, coalesce(b.due, 0) AS due,
       coalesce(b.in_flight, 0) AS in_flight, coalesce(x.dead, 0) AS dead,
       extract(epoch FROM $1 - b.oldest_due)::double precision AS oldest_due_age,
       coalesce(s.breaker_until > $1, false) AS breaker_open,
       coalesce(s.paused, false) AS paused
FROM unnest($2::text[]) AS t (name)
LEFT JOIN backlog AS b ON b.target = t.name
LEFT JOIN dead AS x ON x.target = t.name
LEFT JOIN hookgate.targets AS s ON s.name = t.name
ORDER BY t.name;

-- name: take_shares
-- A relay's shares of its targets' concurrency, for $6 seconds (migration 0022).
SELECT target, share, fair FROM hookgate.take_shares($1, $2::text[], $3::integer[],
                                                     $4::integer[], $5, $6);

-- name: release_shares
-- A relay that stops gives its shares back at once.
DELETE FROM hookgate.target_shares WHERE worker = $1;
