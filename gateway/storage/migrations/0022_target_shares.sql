-- Each relay holds a share of a target's concurrency for a short term (0022).
--
-- Until now every claim took its target's advisory lock and counted the target's
-- deliveries in flight (0010), so the claims of all relays took turns per target: a
-- second worker process added no throughput (bench/relay.py), and the relay that
-- claimed first kept nearly every slot while the other waited for crumbs. Now a relay
-- takes a share of each target's concurrency for `p_term` seconds (renewed well
-- before it ends): the shares of all relays never add up to more than the target's
-- concurrency, and the relay keeps its own deliveries in flight within its share. Its
-- claims then take no lock and count nothing for that target, unless its rate limit or
-- a tripped breaker needs the lock (tokens and the half-open probe are still decided
-- under it, as in 0010).
--
-- The rows: one per target and relay, what it holds (`held`: its share, or more while
-- more of its deliveries are still in flight after its share shrank) and until when.
-- A relay that stops deletes its rows; one that dies leaves them to expire.
CREATE TABLE hookgate.target_shares (
    target text        NOT NULL,
    worker text        NOT NULL,
    held   integer     NOT NULL,
    until  timestamptz NOT NULL,
    PRIMARY KEY (target, worker)
);

-- Take (or renew) `p_worker`'s shares of `p_targets`, whose concurrency is
-- `p_concurrency`, with `p_in_flight` of its deliveries at each now. Per target: its
-- fair part (the concurrency over the relays holding a share), at most what the other
-- relays leave free; `fair` says what it would get once they have given theirs back.
-- Under each target's advisory lock (the claims' own, taken in the same key order
-- before anything else), so two relays never hand out the same slot. Shares of
-- targets no longer named are given back first, before any lock is held.
CREATE FUNCTION hookgate.take_shares(
    p_worker text, p_targets text[], p_concurrency integer[], p_in_flight integer[],
    p_now timestamptz, p_term double precision
) RETURNS TABLE (target text, share integer, fair integer)
LANGUAGE plpgsql VOLATILE SET jit = off AS $$
DECLARE
    lock_key integer;
    i integer;
    others integer;
    others_held integer;
BEGIN
    DELETE FROM hookgate.target_shares AS s
    WHERE s.worker = p_worker AND s.target <> ALL (p_targets);
    FOR lock_key IN
        SELECT DISTINCT hashtext(l.name) FROM unnest(p_targets) AS l (name) ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(1751607655, lock_key);  -- 1751607655: 'hkgg'
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(p_targets), 0) LOOP
        target := p_targets[i];
        DELETE FROM hookgate.target_shares AS s
        WHERE s.target = p_targets[i] AND s.until <= p_now AND s.worker <> p_worker;
        SELECT count(*), coalesce(sum(s.held), 0) INTO others, others_held
        FROM hookgate.target_shares AS s
        WHERE s.target = p_targets[i] AND s.worker <> p_worker;
        fair := ceil(p_concurrency[i]::numeric / (others + 1))::integer;
        share := greatest(0, least(fair, p_concurrency[i] - others_held));
        INSERT INTO hookgate.target_shares AS s (target, worker, held, until)
        VALUES (p_targets[i], p_worker, greatest(share, p_in_flight[i]),
                p_now + make_interval(secs => p_term))
        ON CONFLICT ON CONSTRAINT target_shares_pkey DO UPDATE
            SET held = excluded.held, until = excluded.until;
        RETURN NEXT;
    END LOOP;
END
$$;

-- 0010's allowance, for a relay that holds shares: a target in `p_shared` is not
-- counted (the relay keeps within its share) and is locked only when its rate limit
-- or a tripped breaker needs it. Those are read first, without a lock, to choose the
-- locks; every lock is then taken in key order before the decisions, which read the
-- target again. A breaker that trips between the two reads holds the target back
-- this once (the next claim takes its lock). A new overload; the 0010 one, which a
-- replica not yet upgraded calls, becomes this one without shares (below), so there is
-- one allowance to keep.
CREATE FUNCTION hookgate.claim_allowance(
    p_targets text[], p_quotas integer[], p_now timestamptz, p_concurrency integer[],
    p_rate double precision[], p_burst double precision[], p_breaker boolean[],
    p_lease double precision, p_shared boolean[]
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
    locked boolean[];
BEGIN
    locked := ARRAY(
        SELECT (l.concurrency IS NOT NULL AND NOT coalesce(l.shared, false))
               OR l.rate IS NOT NULL
               OR (l.breaker AND EXISTS (SELECT FROM hookgate.targets AS s
                                         WHERE s.name = l.name
                                           AND s.breaker_until IS NOT NULL))
        FROM unnest(p_targets, p_concurrency, p_rate, p_breaker, p_shared)
            WITH ORDINALITY AS l (name, concurrency, rate, breaker, shared, n)
        ORDER BY l.n);
    FOR lock_key IN
        SELECT DISTINCT hashtext(l.name)
        FROM unnest(p_targets, locked) AS l (name, lock)
        WHERE l.lock
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
        IF p_concurrency[i] IS NOT NULL AND NOT coalesce(p_shared[i], false) THEN
            SELECT count(*) INTO busy FROM hookgate.deliveries AS d
            WHERE d.target = p_targets[i] AND d.status = 'in_flight' AND d.due_at > p_now;
            allowed := least(allowed, p_concurrency[i] - busy);
        END IF;
        IF p_breaker[i] AND state.breaker_until IS NOT NULL AND NOT locked[i] THEN
            -- Tripped since the first read: not without the lock (a probe is one only).
            allowed := 0;
            next_at := greatest(state.breaker_until, p_now);
            RETURN NEXT;
            CONTINUE;
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

-- 0010's signature, for a replica not yet upgraded: the allowance above, no share held.
CREATE OR REPLACE FUNCTION hookgate.claim_allowance(
    p_targets text[], p_quotas integer[], p_now timestamptz, p_concurrency integer[],
    p_rate double precision[], p_burst double precision[], p_breaker boolean[],
    p_lease double precision
) RETURNS TABLE (
    target text, allowed integer, tokens double precision, probe boolean, next_at timestamptz
)
LANGUAGE sql VOLATILE ROWS 8 AS $$
    SELECT * FROM hookgate.claim_allowance(p_targets, p_quotas, p_now, p_concurrency, p_rate,
                                           p_burst, p_breaker, p_lease, NULL::boolean[])
$$;
