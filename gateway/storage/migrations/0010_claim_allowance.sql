-- The claim's flow control, decided on the server in the claim's own statement.
--
-- Deliveries in flight, counted per target from their leases: this index holds only
-- rows in flight (at most a target's concurrency each, plus expired leases), so the
-- count costs the same whatever the backlog of pending retries or the history.
CREATE INDEX deliveries_in_flight_idx ON hookgate.deliveries (target, due_at)
    WHERE status = 'in_flight';

-- A target's token bucket and its breaker probe, written only by claims, which take
-- turns per target (below): claims never write hookgate.targets, whose breaker columns
-- only results write, so neither ever waits for the other's row lock.
CREATE TABLE hookgate.target_flow (
    name      text        PRIMARY KEY,
    tokens    double precision,
    tokens_at timestamptz,
    probe_at  timestamptz  -- a half-open breaker's probe was claimed then
);

-- How many deliveries each target may start now, across every relay: its quota, its
-- free concurrency (counted from leases), its tokens, its breaker (open: none;
-- half-open: one probe) and pause; plus when something it holds back comes due (the
-- next token, the breaker's cooldown end). Called once by the `claim_deliveries`
-- statement, before it looks at any delivery.
--
-- Claims of one target take turns on a transaction-scoped advisory lock (released at
-- the claim's commit), so the count read here stays true until the claim commits; no
-- row is locked, so sending, finishing and recording health never wait for a claim.
-- The locks are taken in one global order (by their key) before anything else: two
-- claims can wait for each other's lock but never in a cycle. Each statement here
-- sees what committed before it ran (a VOLATILE function takes a new snapshot per
-- statement), so a claim that waited for the lock counts the deliveries the previous
-- claimer just took.
CREATE FUNCTION hookgate.claim_allowance(
    p_targets text[], p_quotas integer[], p_now timestamptz, p_concurrency integer[],
    p_rate double precision[], p_burst double precision[], p_breaker boolean[],
    p_lease double precision
) RETURNS TABLE (
    target text, allowed integer, tokens double precision, probe boolean, next_at timestamptz
)
LANGUAGE plpgsql VOLATILE ROWS 8 SET jit = off AS $$
DECLARE
    lock_key integer;
    i integer;
    state record;
    flow record;
    busy integer;
BEGIN
    FOR lock_key IN
        SELECT DISTINCT hashtext(l.name)
        FROM unnest(p_targets, p_concurrency) AS l (name, concurrency)
        WHERE l.concurrency IS NOT NULL
        ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1751607655, lock_key);  -- 1751607655: 'hkgg'
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(p_targets), 0) LOOP
        target := p_targets[i];
        allowed := p_quotas[i];
        tokens := NULL;
        probe := false;
        next_at := NULL;
        SELECT s.paused, s.breaker_until INTO state
        FROM hookgate.targets AS s WHERE s.name = p_targets[i];
        IF FOUND AND state.paused THEN
            allowed := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF p_concurrency[i] IS NOT NULL THEN
            SELECT count(*) INTO busy FROM hookgate.deliveries AS d
            WHERE d.target = p_targets[i] AND d.status = 'in_flight' AND d.due_at > p_now;
            allowed := least(allowed, p_concurrency[i] - busy);
        END IF;
        SELECT f.tokens, f.tokens_at, f.probe_at INTO flow
        FROM hookgate.target_flow AS f WHERE f.name = p_targets[i];
        IF p_rate[i] IS NOT NULL THEN
            -- The bucket: full at first, refilled at `rate`, at most `burst`.
            tokens := CASE WHEN flow.tokens IS NULL OR flow.tokens_at IS NULL THEN p_burst[i]
                ELSE least(p_burst[i], flow.tokens + p_rate[i]
                     * greatest(0, extract(epoch FROM p_now - flow.tokens_at))::double precision)
                END;
            allowed := least(allowed, floor(tokens)::integer);
            IF tokens < 1 THEN
                next_at := p_now + make_interval(secs => (1 - tokens) / p_rate[i]);
            END IF;
        END IF;
        IF p_breaker[i] AND state.breaker_until IS NOT NULL THEN
            IF state.breaker_until > p_now THEN
                allowed := 0;  -- open: cooling down
                next_at := least(next_at, state.breaker_until);
            ELSIF flow.probe_at >= state.breaker_until
                  AND flow.probe_at + make_interval(secs => p_lease) > p_now THEN
                allowed := 0;  -- half-open, its probe in flight: until it answers or its lease ends
                next_at := least(next_at, flow.probe_at + make_interval(secs => p_lease));
            ELSE
                allowed := least(allowed, 1);  -- half-open: one probe
                probe := true;
            END IF;
        END IF;
        allowed := greatest(allowed, 0);
        RETURN NEXT;
    END LOOP;
END
$$;

-- The end of a batch of attempts, in one call (one round trip, one transaction), in a
-- fixed order of locks: the targets' rows first (in name order, for their health), then
-- the deliveries, then their attempts. A claim locks deliveries before it writes the
-- attempt of a lease that ran out, and never a target row: no cycle can form.
-- Returns one row per target whose health was recorded (its breaker state now) and
-- one per delivery this worker still held (out_delivery).
CREATE FUNCTION hookgate.finish_attempts(
    p_now timestamptz,
    r_delivery uuid[], r_attempt integer[], r_duration double precision[], r_outcome text[],
    r_status integer[], r_headers jsonb[], r_body bytea[], r_error text[],
    r_next_status text[], r_next_due timestamptz[], r_interrupted boolean[], r_worker text[],
    r_started timestamptz[],
    h_name text[], h_reset boolean[], h_failed integer[], h_threshold integer[],
    h_cooldown double precision[], h_reason text[], h_attempts integer[],
    h_failed_total integer[], h_window integer[], h_ratio double precision[]
) RETURNS TABLE (
    out_delivery uuid, out_target text, out_failures integer, out_until timestamptz,
    out_reason text
)
LANGUAGE plpgsql VOLATILE SET jit = off AS $$
BEGIN
    -- Health: count consecutive failures (reset by an answer) and failures over a
    -- tumbling window of attempts; open the breaker (until now + cooldown) when either
    -- reaches its threshold, or when a probe of a tripped breaker fails; close it on
    -- an answer.
    RETURN QUERY
    WITH s AS (
        SELECT *
        FROM unnest(h_name, h_reset, h_failed, h_threshold, h_cooldown, h_reason,
                    h_attempts, h_failed_total, h_window, h_ratio)
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
            breaker_reason = CASE WHEN n.failed > 0 THEN n.reason ELSE t.breaker_reason END
        FROM next AS n
        WHERE t.name = n.name
        RETURNING t.name, t.failures, t.breaker_until, t.breaker_reason
    )
    SELECT NULL::uuid, u.name, u.failures, u.breaker_until, u.breaker_reason FROM updated AS u;

    -- A delivery moves only if this worker still holds it (same attempt, in flight).
    RETURN QUERY
    WITH moved AS (
        UPDATE hookgate.deliveries AS d
        SET status = r.next_status, due_at = r.next_due, last_outcome = r.outcome,
            last_error = r.error, worker = NULL, updated_at = p_now,
            interruptions = d.interruptions + r.interrupted::integer
        FROM unnest(r_delivery, r_attempt, r_outcome, r_error, r_next_status, r_next_due,
                    r_interrupted)
            AS r (delivery_id, attempt, outcome, error, next_status, next_due, interrupted)
        WHERE d.id = r.delivery_id AND d.attempts = r.attempt AND d.status = 'in_flight'
        RETURNING d.id
    )
    SELECT m.id, NULL::text, NULL::integer, NULL::timestamptz, NULL::text FROM moved AS m;

    -- Each attempt is written once, here, whatever happened to its lease (it replaces
    -- the LEASE_EXPIRED row a claim wrote for it if its lease ran out meanwhile).
    INSERT INTO hookgate.attempts AS a
        (delivery_id, attempt, worker, started_at, duration_ms, outcome, status_code,
         response_headers, response_body, error)
    SELECT r.delivery_id, r.attempt, coalesce(r.worker, 'unknown'), coalesce(r.started, p_now),
           r.duration, r.outcome, r.status, r.headers, r.body, r.error
    FROM unnest(r_delivery, r_attempt, r_duration, r_outcome, r_status, r_headers, r_body,
                r_error, r_worker, r_started)
        AS r (delivery_id, attempt, duration, outcome, status, headers, body, error, worker,
              started)
    ON CONFLICT (delivery_id, attempt) DO UPDATE
        SET duration_ms = excluded.duration_ms, outcome = excluded.outcome,
            status_code = excluded.status_code, response_headers = excluded.response_headers,
            response_body = excluded.response_body, error = excluded.error;
END
$$;
