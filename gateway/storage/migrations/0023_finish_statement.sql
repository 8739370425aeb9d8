-- The end of a batch of attempts (0021) doing less per call and per attempt.
--
-- Postgres spent about as much CPU per relayed delivery as the relay itself, finishing
-- nearly half of it (about 45 of 100 us of backend CPU a delivery, in batches of 32,
-- claimed and finished serially on one connection). Three things it did for nothing:
--
-- - The health statement ran for every batch, also for one with no target that has a
--   breaker (its arrays empty): a statement's start-up (its snapshot, checking its
--   cached plan, starting its scans) costs about 90 us even when it finds no row.
-- - The deliveries and the attempts were two statements, each with that start-up
--   (and with locks taken on every day partition of both tables, and their indexes,
--   for each cached plan checked): now they are one.
-- - Every attempt was written with ON CONFLICT, which probes the key index, takes a
--   speculative-insertion lock and logs a second record per row. An attempt of a
--   delivery this worker still held (its update moved it) cannot have a row yet: a
--   row of an attempt is written before its end only by a claim that took the
--   delivery over after its lease ran out (LEASE_EXPIRED, the delivery's attempt then
--   counted up) or by a release at shutdown (RELEASED, the delivery back to pending),
--   and either leaves the delivery where this update does not move it. Those are
--   inserted plainly; only the others replace a row, as before.
--
-- The same signature, arguments and results, so a relay not yet upgraded calls this one
-- too; the lock order is 0010's (the targets' rows, then the deliveries, then their
-- attempts): the main query reads the deliveries moved, and the attempts, which no
-- part reads, are written after it.
CREATE OR REPLACE FUNCTION hookgate.finish_attempts(
    p_now timestamptz,
    r_delivery uuid[], r_attempt integer[], r_duration double precision[], r_outcome text[],
    r_status integer[], r_headers jsonb[], r_body bytea[], r_error text[],
    r_next_status text[], r_next_due timestamptz[], r_interrupted boolean[], r_worker text[],
    r_started timestamptz[],
    h_name text[], h_reset boolean[], h_failed integer[], h_threshold integer[],
    h_cooldown double precision[], h_reason text[], h_attempts integer[],
    h_failed_total integer[], h_window integer[], h_ratio double precision[],
    r_event uuid[]
) RETURNS TABLE (
    out_delivery uuid, out_target text, out_failures integer, out_until timestamptz,
    out_reason text
)
LANGUAGE plpgsql VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    -- Health: count consecutive failures (reset by an answer) and failures over a
    -- tumbling window of attempts; open the breaker (until now + cooldown) when either
    -- reaches its threshold, or when a probe of a tripped breaker fails; close it on
    -- an answer. Only for a batch that says something about a target with a breaker.
    IF cardinality(h_name) > 0 THEN
        RETURN QUERY
        WITH s AS (
            SELECT *
            FROM unnest(h_name, h_reset, h_failed, h_threshold, h_cooldown, h_reason,
                        h_attempts, h_failed_total, h_window, h_ratio)
                AS s (name, reset, failed, threshold, cooldown, reason, attempts,
                      failed_total, window_size, ratio)
        ), next AS (
            SELECT t.name, s.cooldown,
                   CASE WHEN s.reset THEN s.failed ELSE t.failures + s.failed END AS failures,
                   t.window_attempts + s.attempts AS seen,
                   t.window_failures + s.failed_total AS bad,
                   s.window_size, s.ratio, s.threshold, s.reset, s.failed, s.reason,
                   t.breaker_until AS tripped
            FROM hookgate.targets AS t JOIN s ON s.name = t.name
            ORDER BY t.name
            FOR UPDATE OF t
        ), updated AS (
            UPDATE hookgate.targets AS t
            SET failures = n.failures,
                window_attempts = CASE WHEN n.window_size > 0 AND n.seen >= n.window_size
                                       THEN 0 ELSE n.seen END,
                window_failures = CASE WHEN n.window_size > 0 AND n.seen >= n.window_size
                                       THEN 0 ELSE n.bad END,
                breaker_until = CASE
                    WHEN n.failures >= n.threshold
                      OR (n.ratio > 0 AND n.window_size > 0 AND n.seen >= n.window_size
                          AND n.bad >= n.ratio * n.seen)
                      OR (n.tripped IS NOT NULL AND n.failed > 0 AND NOT n.reset)
                        THEN p_now + make_interval(secs => n.cooldown)
                    WHEN n.reset THEN NULL
                    ELSE t.breaker_until END,
                breaker_reason = CASE WHEN n.failed > 0 THEN n.reason
                                      ELSE t.breaker_reason END
            FROM next AS n
            WHERE t.name = n.name
            RETURNING t.name, t.failures, t.breaker_until, t.breaker_reason
        )
        SELECT NULL::uuid, u.name, u.failures, u.breaker_until, u.breaker_reason
        FROM updated AS u;
    END IF;

    -- (0021) Each delivery's event id, its partition key: given by the caller (the
    -- claim returned it), or looked up in every partition for a caller that had none.
    IF array_position(r_event, NULL) IS NOT NULL
       OR coalesce(cardinality(r_event), 0) <> coalesce(cardinality(r_delivery), 0) THEN
        r_event := ARRAY(
            SELECT coalesce(e.event_id,
                            (SELECT d.event_id FROM hookgate.deliveries AS d
                             WHERE d.id = e.delivery_id))
            FROM unnest(r_delivery, r_event) WITH ORDINALITY AS e (delivery_id, event_id, n)
            ORDER BY e.n);
    END IF;

    RETURN QUERY
    WITH r AS (
        SELECT *
        FROM unnest(r_delivery, r_event, r_attempt, r_duration, r_outcome, r_status,
                    r_headers, r_body, r_error, r_next_status, r_next_due, r_interrupted,
                    r_worker, r_started)
            AS r (delivery_id, event_id, attempt, duration, outcome, status, headers, body,
                  error, next_status, next_due, interrupted, worker, started)
    ), moved AS (
        -- A delivery moves only if this worker still holds it (same attempt, in flight).
        UPDATE hookgate.deliveries AS d
        SET status = r.next_status, due_at = r.next_due, last_outcome = r.outcome,
            last_error = r.error, worker = NULL, updated_at = p_now,
            interruptions = d.interruptions + r.interrupted::integer
        FROM r
        WHERE d.id = r.delivery_id AND d.event_id = r.event_id AND d.attempts = r.attempt
          AND d.status = 'in_flight'
        RETURNING d.id
    ), written AS (
        -- Each attempt is written once, whatever happened to its lease. That of a
        -- delivery just moved is new (above).
        INSERT INTO hookgate.attempts
            (delivery_id, event_id, attempt, worker, started_at, duration_ms, outcome,
             status_code, response_headers, response_body, error)
        SELECT r.delivery_id, r.event_id, r.attempt, coalesce(r.worker, 'unknown'),
               coalesce(r.started, p_now), r.duration, r.outcome, r.status, r.headers,
               r.body, r.error
        FROM r
        WHERE r.delivery_id IN (SELECT m.id FROM moved AS m)
    ), rewritten AS (
        -- The others replace the LEASE_EXPIRED (or RELEASED) row written for them, if
        -- their delivery is still stored (found by its full key).
        INSERT INTO hookgate.attempts AS a
            (delivery_id, event_id, attempt, worker, started_at, duration_ms, outcome,
             status_code, response_headers, response_body, error)
        SELECT r.delivery_id, r.event_id, r.attempt, coalesce(r.worker, 'unknown'),
               coalesce(r.started, p_now), r.duration, r.outcome, r.status, r.headers,
               r.body, r.error
        FROM r
        WHERE r.delivery_id NOT IN (SELECT m.id FROM moved AS m)
          AND EXISTS (SELECT FROM hookgate.deliveries AS d
                      WHERE d.id = r.delivery_id AND d.event_id = r.event_id)
        ON CONFLICT (delivery_id, attempt, event_id) DO UPDATE
            SET duration_ms = excluded.duration_ms, outcome = excluded.outcome,
                status_code = excluded.status_code,
                response_headers = excluded.response_headers,
                response_body = excluded.response_body, error = excluded.error
    )
    SELECT m.id, NULL::text, NULL::integer, NULL::timestamptz, NULL::text FROM moved AS m;
END
$$;
