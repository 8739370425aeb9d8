-- What history costs (bench/growth.py): retiring a day costs what its few kept rows
-- cost, and finishing attempts looks each delivery up in its own day's partition.
--
-- retire_day (0017) looked for the day's open deliveries with one
-- `status IN ('pending', 'in_flight', 'queued')`, which no partial index's predicate
-- covers (the claim index is on pending and in-flight, the replay index on queued): the
-- plan read the whole day partition of deliveries while the three tables were locked
-- (about 0.1 s for a day of 1,000,000 events on the development VM). The same function,
-- asking for each set as its index says it.

CREATE OR REPLACE FUNCTION hookgate.retire_day(
    day date, sources text[], dead_before timestamptz[], other_dead timestamptz
) RETURNS TABLE (dropped bigint, kept bigint)
LANGUAGE plpgsql AS $$
DECLARE
    suffix text := '_p' || to_char(day, 'YYYYMMDD');
    total bigint;
    tbl text;
BEGIN
    dropped := 0;
    kept := 0;
    IF to_regclass(format('hookgate.%I', 'events' || suffix)) IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- Counted before the lock: only a clock far off adds rows to a past day.
    EXECUTE format('SELECT count(*) FROM hookgate.%I', 'events' || suffix) INTO total;
    PERFORM set_config('lock_timeout', '500ms', true);
    LOCK TABLE hookgate.events, hookgate.deliveries, hookgate.attempts IN ACCESS EXCLUSIVE MODE;
    -- Found through the partial indexes on open, queued and dead deliveries: cheap on
    -- any day. (0021) Each status set is asked for as one of those indexes' predicates
    -- says it: a single `status IN ('pending', 'in_flight', 'queued')` matches none of
    -- them, and the planner read the day's every delivery instead.
    EXECUTE format($q$
        CREATE TEMP TABLE kept_ids ON COMMIT DROP AS
        SELECT event_id AS id FROM hookgate.%1$I
        WHERE status IN ('pending', 'in_flight')
        UNION
        SELECT event_id FROM hookgate.%1$I
        WHERE status = 'queued'
        UNION
        SELECT d.event_id
        FROM hookgate.%1$I AS d
        JOIN hookgate.%2$I AS e ON e.id = d.event_id
        LEFT JOIN unnest($1::text[], $2::timestamptz[]) AS p (source, before)
            ON p.source = e.source
        WHERE d.status = 'dead'
          AND (e.received_at < CASE WHEN p.source IS NULL THEN $3 ELSE p.before END)
              IS NOT TRUE
        $q$, 'deliveries' || suffix, 'events' || suffix)
        USING sources, dead_before, other_dead;
    -- Statistics, so the next three look the few kept rows up by index, not scan the day.
    ANALYZE kept_ids;
    EXECUTE format('CREATE TEMP TABLE kept_events ON COMMIT DROP AS SELECT * FROM hookgate.%I '
                   'WHERE id IN (SELECT id FROM kept_ids)', 'events' || suffix);
    EXECUTE format('CREATE TEMP TABLE kept_deliveries ON COMMIT DROP AS SELECT * '
                   'FROM hookgate.%I WHERE event_id IN (SELECT id FROM kept_ids)',
                   'deliveries' || suffix);
    ANALYZE kept_deliveries;
    EXECUTE format('CREATE TEMP TABLE kept_attempts ON COMMIT DROP AS SELECT a.* '
                   'FROM hookgate.%I AS a JOIN kept_deliveries AS d '
                   'ON a.delivery_id = d.id AND a.event_id = d.event_id',
                   'attempts' || suffix);
    -- Detached and renamed, not dropped: removing a day's files takes seconds, and that
    -- happens later in `drop_retired`, with no lock on the three tables.
    FOREACH tbl IN ARRAY ARRAY['attempts', 'deliveries', 'events'] LOOP
        EXECUTE format('ALTER TABLE hookgate.%I DETACH PARTITION hookgate.%I', tbl, tbl || suffix);
        EXECUTE format('ALTER TABLE hookgate.%I RENAME TO %I', tbl || suffix,
                       'retired_' || tbl || suffix);
    END LOOP;
    -- Dynamic like the rest: the temporary tables are new on every call.
    EXECUTE 'INSERT INTO hookgate.events SELECT * FROM kept_events';
    EXECUTE 'INSERT INTO hookgate.deliveries SELECT * FROM kept_deliveries';
    EXECUTE 'INSERT INTO hookgate.attempts SELECT * FROM kept_attempts';
    EXECUTE 'SELECT count(*) FROM kept_events' INTO kept;
    dropped := total - kept;
    DROP TABLE kept_ids, kept_events, kept_deliveries, kept_attempts;
    RETURN NEXT;
END
$$;

-- The end of a batch of attempts (0010, 0017) with each delivery's event id, the
-- partition key: without it, every lookup of a delivery by its id alone probed the key
-- index of every day's partition, so finishing cost grew with the days of history kept
-- (bench/growth.py). Its statements keep one generic plan each: planning them again on
-- every call (what the default plan_cache_mode chose) costs more than running them, and
-- more with every day partition. A new overload: the 0017 one stays for a replica not
-- yet upgraded.
CREATE FUNCTION hookgate.finish_attempts(
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

    -- (0021) Each delivery's event id, its partition key: given by the caller (the
    -- claim returned it), or looked up in every partition for a caller that had none.
    -- Joined on it, the statements below find each delivery in its own day's partition
    -- (a nested loop over the results prunes the other days as it runs).
    IF array_position(r_event, NULL) IS NOT NULL
       OR coalesce(cardinality(r_event), 0) <> coalesce(cardinality(r_delivery), 0) THEN
        r_event := ARRAY(
            SELECT coalesce(e.event_id,
                            (SELECT d.event_id FROM hookgate.deliveries AS d
                             WHERE d.id = e.delivery_id))
            FROM unnest(r_delivery, r_event) WITH ORDINALITY AS e (delivery_id, event_id, n)
            ORDER BY e.n);
    END IF;

    -- A delivery moves only if this worker still holds it (same attempt, in flight).
    RETURN QUERY
    WITH moved AS (
        UPDATE hookgate.deliveries AS d
        SET status = r.next_status, due_at = r.next_due, last_outcome = r.outcome,
            last_error = r.error, worker = NULL, updated_at = p_now,
            interruptions = d.interruptions + r.interrupted::integer
        FROM unnest(r_delivery, r_event, r_attempt, r_outcome, r_error, r_next_status,
                    r_next_due, r_interrupted)
            AS r (delivery_id, event_id, attempt, outcome, error, next_status, next_due,
                  interrupted)
        WHERE d.id = r.delivery_id AND d.event_id = r.event_id AND d.attempts = r.attempt
          AND d.status = 'in_flight'
        RETURNING d.id
    )
    SELECT m.id, NULL::text, NULL::integer, NULL::timestamptz, NULL::text FROM moved AS m;

    -- Each attempt is written once, here, whatever happened to its lease (it replaces
    -- the LEASE_EXPIRED row a claim wrote for it if its lease ran out meanwhile).
    -- (0017) Attempts carry their event's id, their partition key. (0021) The join
    -- keeps an attempt only for a delivery that is still stored, found by its full key.
    INSERT INTO hookgate.attempts AS a
        (delivery_id, event_id, attempt, worker, started_at, duration_ms, outcome,
         status_code, response_headers, response_body, error)
    SELECT r.delivery_id, d.event_id, r.attempt, coalesce(r.worker, 'unknown'),
           coalesce(r.started, p_now), r.duration, r.outcome, r.status, r.headers, r.body,
           r.error
    FROM unnest(r_delivery, r_event, r_attempt, r_duration, r_outcome, r_status, r_headers,
                r_body, r_error, r_worker, r_started)
        AS r (delivery_id, event_id, attempt, duration, outcome, status, headers, body, error,
              worker, started)
    JOIN hookgate.deliveries AS d ON d.id = r.delivery_id AND d.event_id = r.event_id
    ON CONFLICT (delivery_id, attempt, event_id) DO UPDATE
        SET duration_ms = excluded.duration_ms, outcome = excluded.outcome,
            status_code = excluded.status_code, response_headers = excluded.response_headers,
            response_body = excluded.response_body, error = excluded.error;
END
$$;
