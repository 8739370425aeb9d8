-- Retiring a day costs what its few kept rows cost, not what the day holds (bench/growth.py).
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
