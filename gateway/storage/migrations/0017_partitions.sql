-- Events, deliveries and attempts partitioned by day, so retention drops whole days.
--
-- Native declarative range partitioning (no extension): events on their id (a UUIDv7:
-- its first 48 bits are the time it was received), deliveries and attempts on their
-- event's id, so one day of all three goes together whatever delivery ids look like.
-- Each table has one partition per UTC day, created a few days ahead by the gateway
-- (`ensure_partitions`, at migrate time and by every housekeeping pass), and a default
-- partition that catches rows no day partition covers (a skewed clock) and holds the
-- rows that outlive their day (`retire_day` moves them there: still pending, or dead
-- under a longer retention).
--
-- No foreign keys between the three: a day's partitions are dropped together, and a
-- foreign key would make each drop check the other tables' partitions row by row. The
-- statements that delete rows one by one delete an event's deliveries and attempts too.
--
-- An existing database is converted in place: the tables are renamed, partitioned
-- copies made with every column they had (whichever migrations added them) and one day
-- partition per day that holds events, the rows copied, the old tables dropped, and the
-- keys and every other index recreated. It takes time proportional to the rows stored.

-- The first UUIDv7 of a UTC day: the lower bound of its partition.
CREATE FUNCTION hookgate.day_first_id(day date) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM day::timestamp AT TIME ZONE 'UTC') * 1000)::bigint),
                 12, '0') || repeat('0', 20))::uuid
$$;

-- The UTC day a UUIDv7 was made on.
CREATE FUNCTION hookgate.id_day(id uuid) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (to_timestamp(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint
                         / 1000.0) AT TIME ZONE 'UTC')::date
$$;

-- Day partitions of the three tables from first_day to last_day, those missing.
-- Rows of a new day already caught by a default partition are moved into it. Creations
-- take turns on an advisory lock, so replicas may all call this at once. Returns how
-- many partitions it made. The gateway makes days ahead of the clock (never the day
-- being written to: a row routed to the default partition while the day's partition is
-- attached would fail its insert). Waiting for a lock longer than lock_timeout (shorter
-- than deadlock_timeout, so a deadlock aborts this, never an ingest or a claim) fails
-- the call; the next pass tries again.
CREATE FUNCTION hookgate.ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    tbl text;
    made integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '500ms', true);
    PERFORM pg_advisory_xact_lock(1751607664);  -- 'hkgp'
    FOR day IN SELECT generate_series(first_day, last_day, interval '1 day')::date LOOP
        FOREACH tbl IN ARRAY ARRAY['events', 'deliveries', 'attempts'] LOOP
            IF to_regclass(format('hookgate.%I', tbl || '_p' || to_char(day, 'YYYYMMDD')))
                    IS NULL THEN
                PERFORM hookgate.create_day_partition(tbl, day);
                made := made + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN made;
END
$$;

-- One day partition of one table (used by ensure_partitions). Made standalone, filled
-- from the default partition, then attached: attaching builds its indexes and checks
-- that the default partition no longer holds rows of that day.
CREATE FUNCTION hookgate.create_day_partition(tbl text, day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := tbl || '_p' || to_char(day, 'YYYYMMDD');
    key text := CASE WHEN tbl = 'events' THEN 'id' ELSE 'event_id' END;
    low uuid := hookgate.day_first_id(day);
    high uuid := hookgate.day_first_id(day + 1);
BEGIN
    EXECUTE format('CREATE TABLE hookgate.%I (LIKE hookgate.%I INCLUDING DEFAULTS '
                   'INCLUDING CONSTRAINTS INCLUDING GENERATED)', part, tbl);
    IF to_regclass(format('hookgate.%I', tbl || '_default')) IS NOT NULL THEN
        EXECUTE format('WITH moved AS (DELETE FROM hookgate.%I WHERE %I >= $1 AND %I < $2 '
                       'RETURNING *) INSERT INTO hookgate.%I SELECT * FROM moved',
                       tbl || '_default', key, key, part) USING low, high;
    END IF;
    IF tbl = 'deliveries' THEN
        -- Every claim and finish rewrites a row: vacuum early rather than let dead
        -- tuples pile up (set per partition: a partitioned table has no storage).
        EXECUTE format('ALTER TABLE hookgate.%I SET (autovacuum_vacuum_scale_factor = 0.02, '
                       'autovacuum_analyze_scale_factor = 0.02)', part);
    END IF;
    EXECUTE format('ALTER TABLE hookgate.%I ATTACH PARTITION hookgate.%I FOR VALUES FROM (%L) '
                   'TO (%L)', tbl, part, low, high);
END
$$;

-- Retire one day's partitions of the three tables (detach them, for drop_retired),
-- keeping (moved to the default
-- partitions) the events that must outlive it: a delivery pending or in flight, or
-- dead while the dead retention of its source ($2/$3; NULL: forever; $4 for sources
-- not listed) has not run out. The caller decides the day is past every source's
-- `delivered` retention. The three tables are locked for the few statements this takes
-- (finding what to keep goes through small partial indexes). Returns the
-- events dropped and kept. Waiting for the locks longer than lock_timeout (500 ms,
-- shorter than deadlock_timeout, so in a deadlock this is the one that gives up) fails
-- the call; the caller tries again later.
CREATE FUNCTION hookgate.retire_day(
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
    -- Found through the partial indexes on open and dead deliveries: cheap on any day.
    EXECUTE format($q$
        CREATE TEMP TABLE kept_ids ON COMMIT DROP AS
        SELECT DISTINCT event_id AS id FROM hookgate.%1$I
        WHERE status IN ('pending', 'in_flight', 'queued')
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

-- Drop the day partitions retire_day detached (their files go at this commit, which
-- locks nothing but them). Returns how many tables it dropped.
CREATE FUNCTION hookgate.drop_retired() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    name text;
    dropped integer := 0;
BEGIN
    FOR name IN
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'hookgate'::regnamespace AND c.relkind = 'r'
          AND c.relname ~ '^retired_(events|deliveries|attempts)_p[0-9]{8}$'
    LOOP
        EXECUTE format('DROP TABLE hookgate.%I', name);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

-- The conversion.
ALTER TABLE hookgate.events RENAME TO events_unpartitioned;
ALTER TABLE hookgate.deliveries RENAME TO deliveries_unpartitioned;
ALTER TABLE hookgate.attempts RENAME TO attempts_unpartitioned;

-- Every non-unique index of the old tables (whichever migration made it), to recreate.
CREATE TEMP TABLE old_indexes ON COMMIT DROP AS
SELECT replace(pg_get_indexdef(i.indexrelid), ' hookgate.' || c.relname || ' ',
               ' hookgate.' || replace(c.relname, '_unpartitioned', '') || ' ') AS def
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indrelid
WHERE c.relnamespace = 'hookgate'::regnamespace
  AND c.relname IN ('events_unpartitioned', 'deliveries_unpartitioned', 'attempts_unpartitioned')
  AND NOT i.indisunique;

CREATE TABLE hookgate.events (
    LIKE hookgate.events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
) PARTITION BY RANGE (id);
CREATE TABLE hookgate.deliveries (
    LIKE hookgate.deliveries_unpartitioned
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
) PARTITION BY RANGE (event_id);
-- Attempts gain their event's id: it is their partition key.
CREATE TABLE hookgate.attempts (
    event_id uuid NOT NULL,
    LIKE hookgate.attempts_unpartitioned
        INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
) PARTITION BY RANGE (event_id);

-- FIFO order: an identity column cannot be on a partitioned table before Postgres 17,
-- so the sequence is the column's default, continuing where the identity stopped.
CREATE SEQUENCE hookgate.deliveries_seq;
SELECT setval('hookgate.deliveries_seq', coalesce(max(seq), 0) + 1, false)
FROM hookgate.deliveries_unpartitioned;
ALTER TABLE hookgate.deliveries ALTER COLUMN seq SET DEFAULT nextval('hookgate.deliveries_seq');

CREATE TABLE hookgate.events_default PARTITION OF hookgate.events DEFAULT;
CREATE TABLE hookgate.deliveries_default PARTITION OF hookgate.deliveries DEFAULT;
CREATE TABLE hookgate.attempts_default PARTITION OF hookgate.attempts DEFAULT;
ALTER TABLE hookgate.deliveries_default SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);

SELECT hookgate.ensure_partitions(day, day)
FROM (SELECT DISTINCT hookgate.id_day(id) AS day FROM hookgate.events_unpartitioned) AS days;
SELECT hookgate.ensure_partitions((now() AT TIME ZONE 'UTC')::date - 1,
                                  (now() AT TIME ZONE 'UTC')::date + 3);

INSERT INTO hookgate.events SELECT * FROM hookgate.events_unpartitioned;
INSERT INTO hookgate.deliveries SELECT * FROM hookgate.deliveries_unpartitioned;
INSERT INTO hookgate.attempts
SELECT d.event_id, a.*
FROM hookgate.attempts_unpartitioned AS a
JOIN hookgate.deliveries_unpartitioned AS d ON d.id = a.delivery_id;

DROP TABLE hookgate.attempts_unpartitioned, hookgate.deliveries_unpartitioned,
           hookgate.events_unpartitioned CASCADE;

-- Keys: each includes its table's partition key, as Postgres requires. Lookups by
-- delivery id alone (claim, finish) use each partition's key index; a day partition
-- that holds no such id costs one index probe.
ALTER TABLE hookgate.events ADD CONSTRAINT events_pkey PRIMARY KEY (id);
ALTER TABLE hookgate.deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id, event_id);
ALTER TABLE hookgate.deliveries
    ADD CONSTRAINT deliveries_event_target_key UNIQUE (event_id, target);
ALTER TABLE hookgate.attempts
    ADD CONSTRAINT attempts_pkey PRIMARY KEY (delivery_id, attempt, event_id);

DO $$
DECLARE
    def text;
BEGIN
    FOR def IN SELECT o.def FROM old_indexes AS o LOOP
        EXECUTE def;
    END LOOP;
END
$$;

-- retire_day finds the dead deliveries of a day through this (small: dead ones only).
CREATE INDEX deliveries_dead_event_idx ON hookgate.deliveries (event_id) WHERE status = 'dead';

-- The results of attempts (migration 0010's function) write attempts with the key
-- they have now, (delivery_id, attempt, event_id): the same function otherwise.
CREATE OR REPLACE FUNCTION hookgate.finish_attempts(
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
    -- (0017) Attempts carry their event's id, their partition key: read from the
    -- delivery, by its key's index in each partition.
    INSERT INTO hookgate.attempts AS a
        (delivery_id, event_id, attempt, worker, started_at, duration_ms, outcome,
         status_code, response_headers, response_body, error)
    SELECT r.delivery_id, d.event_id, r.attempt, coalesce(r.worker, 'unknown'),
           coalesce(r.started, p_now), r.duration, r.outcome, r.status, r.headers, r.body,
           r.error
    FROM unnest(r_delivery, r_attempt, r_duration, r_outcome, r_status, r_headers, r_body,
                r_error, r_worker, r_started)
        AS r (delivery_id, attempt, duration, outcome, status, headers, body, error, worker,
              started)
    JOIN hookgate.deliveries AS d ON d.id = r.delivery_id
    ON CONFLICT (delivery_id, attempt, event_id) DO UPDATE
        SET duration_ms = excluded.duration_ms, outcome = excluded.outcome,
            status_code = excluded.status_code, response_headers = excluded.response_headers,
            response_body = excluded.response_body, error = excluded.error;
END
$$;
