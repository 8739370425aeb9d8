-- The claim's flow control, decided on the server in the claim's own statement.
--
-- Deliveries in flight, counted per target from their leases: this index holds only
-- rows in flight (at most a target's concurrency each, plus expired leases), so the
-- count costs the same whatever the backlog of pending retries or the history.
CREATE INDEX deliveries_in_flight_idx ON hookgate.deliveries (target, due_at)
    WHERE status = 'in_flight';

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
    p_rate double precision[], p_burst double precision[], p_breaker boolean[]
) RETURNS TABLE (
    target text, allowed integer, tokens double precision, probe boolean, next_at timestamptz
)
LANGUAGE plpgsql VOLATILE ROWS 8 SET jit = off AS $$
DECLARE
    lock_key integer;
    i integer;
    state record;
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
        SELECT s.paused, s.tokens, s.tokens_at, s.breaker_until INTO state
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
        IF p_rate[i] IS NOT NULL THEN
            -- The bucket: full at first, refilled at `rate`, at most `burst`.
            tokens := CASE WHEN state.tokens IS NULL OR state.tokens_at IS NULL THEN p_burst[i]
                ELSE least(p_burst[i], state.tokens + p_rate[i]
                     * greatest(0, extract(epoch FROM p_now - state.tokens_at))::double precision)
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
