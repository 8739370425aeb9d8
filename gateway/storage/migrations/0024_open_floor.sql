-- The open floor: the first event id of the oldest day whose partition holds an open
-- delivery (pending, in flight or queued), so that a claim starts only the partitions
-- from that day on.
--
-- A claim runs under one generic plan (the relay's connections), and executor start-up
-- opens, locks and starts a scan of every day partition in each place the statement
-- reads deliveries or events: about 1.9 of 2.9 ms of Postgres CPU for a claim of one
-- row with 35 day partitions (a 30-day retention), however few of them hold anything
-- due. With `event_id >= $floor` (a parameter, so the pruning happens at start-up) the
-- days before the floor are never started.
--
-- The floor is only ever a lower bound of every open delivery's event id:
-- - `raise_open_floor` (housekeeping) sets it from the partitions themselves, never
--   above yesterday's first id, under the row's lock;
-- - whatever reopens a delivery of an older day (a replay, a replay to a new target)
--   lowers it in the same statement, after the row lock that a raise holds while it
--   looks (so a raise that did not see the reopening cannot overwrite it);
-- - past `valid_until` (housekeeping stopped) it no longer applies: claims read every
--   partition again.
-- Deliveries moved into the default partition when their day was retired keep their old
-- event ids: the floor is never above the lowest open one there (while one waits there,
-- nothing is pruned, as before this migration).
CREATE TABLE hookgate.open_floor (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    floor       uuid NOT NULL,
    valid_until timestamptz
);
INSERT INTO hookgate.open_floor (floor) VALUES ('00000000-0000-0000-0000-000000000000');

-- The floor from the partitions: the first id of the oldest day partition, before
-- yesterday, that holds an open delivery (each looked at through its partial indexes: a
-- probe or two, not a scan), else yesterday's, or the lowest event id of an open
-- delivery in the default partition if lower; valid for `p_valid` seconds. Returns it.
CREATE FUNCTION hookgate.raise_open_floor(p_now timestamptz, p_valid double precision)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    cap date := (p_now AT TIME ZONE 'UTC')::date - 1;
    part record;
    open boolean;
    day date := cap;
    new_floor uuid;
    parked uuid;
BEGIN
    PERFORM FROM hookgate.open_floor FOR UPDATE;
    FOR part IN
        SELECT c.relname, to_date(substr(c.relname, length('deliveries_p') + 1), 'YYYYMMDD') AS d
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'hookgate.deliveries'::regclass
          AND c.relname ~ '^deliveries_p[0-9]{8}$'
        ORDER BY c.relname
    LOOP
        EXIT WHEN part.d >= cap;
        -- Two probes, one per partial index: IN ('pending', 'in_flight') is the claim
        -- index's own predicate, 'queued' deliveries_queued_idx's.
        EXECUTE format('SELECT EXISTS (SELECT FROM hookgate.%I WHERE status IN '
                       '(''pending'', ''in_flight'')) OR EXISTS (SELECT FROM hookgate.%I '
                       'WHERE status = ''queued'')', part.relname, part.relname)
            INTO open;
        IF open THEN
            day := part.d;
            EXIT;
        END IF;
    END LOOP;
    -- (No min() of uuid before Postgres 16.)
    SELECT least((SELECT d.event_id FROM hookgate.deliveries_default AS d
                  WHERE d.status IN ('pending', 'in_flight') ORDER BY 1 LIMIT 1),
                 (SELECT d.event_id FROM hookgate.deliveries_default AS d
                  WHERE d.status = 'queued' ORDER BY 1 LIMIT 1))
        INTO parked;
    new_floor := least(hookgate.day_first_id(day), parked);
    UPDATE hookgate.open_floor
    SET floor = new_floor, valid_until = p_now + make_interval(secs => p_valid);
    RETURN new_floor;
END
$$;
