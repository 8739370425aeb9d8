-- A relay frees a slot when its send ends, not when its result commits (0022).
--
-- Until now a target's slot stayed taken from the claim until the attempt's result was
-- committed, in a batch of results, so every delivery waited a whole batch write before
-- the next one could start (bench/relay.py: about a third of each slot's time). A relay
-- now counts a slot free once the target has answered, and tells its next claim which of
-- its deliveries are in that state (id, event id and attempt: that claim, not a later
-- one's): those are not counted as in flight. Only answers free a slot early; a failure keeps its slot until
-- its result, and what it does to the breaker, is committed, so no more than a target's
-- concurrency is ever sent past a breaker's threshold (0010).
--
-- A new overload, like 0021's finish_attempts: the 0010 one stays for a replica not yet
-- upgraded.
CREATE FUNCTION hookgate.claim_allowance(
    p_targets text[], p_quotas integer[], p_now timestamptz, p_concurrency integer[],
    p_rate double precision[], p_burst double precision[], p_breaker boolean[],
    p_lease double precision, p_finishing uuid[], p_finishing_events uuid[],
    p_finishing_attempts integer[]
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
            -- In flight, less the caller's own that have ended and whose results are
            -- being written: one statement, so one snapshot. A result that commits
            -- meanwhile is then either in neither count or in both.
            SELECT (SELECT count(*) FROM hookgate.deliveries AS d
                    WHERE d.target = p_targets[i] AND d.status = 'in_flight'
                      AND d.due_at > p_now)
                 - CASE WHEN coalesce(cardinality(p_finishing), 0) = 0 THEN 0 ELSE
                   (SELECT count(*)
                    FROM unnest(p_finishing, p_finishing_events, p_finishing_attempts)
                        AS f (id, event_id, attempt)
                    JOIN hookgate.deliveries AS d ON d.id = f.id AND d.event_id = f.event_id
                        AND d.attempts = f.attempt  -- that very claim, not a later one's
                    WHERE d.target = p_targets[i] AND d.status = 'in_flight'
                      AND d.due_at > p_now) END
            INTO busy;
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
