-- Events as received, byte for byte, and one delivery per (event, target).

CREATE TABLE hookgate.events (
    -- UUIDv7: time-ordered, so inserts stay at the index's right edge, and this key is
    -- also the index for listing events by time (its first 48 bits are received_at).
    id          uuid        PRIMARY KEY,
    source      text        NOT NULL,
    event_type  text,
    received_at timestamptz NOT NULL,
    method      text        NOT NULL,
    path        text        NOT NULL,             -- raw path, percent-encoding kept
    query       text        NOT NULL,             -- raw query string without '?'
    headers     jsonb       NOT NULL,             -- [[name, value], ...] in order; latin-1 decoded, so exact
    body        bytea       NOT NULL,
    peer        text
);

CREATE TABLE hookgate.deliveries (
    id           uuid        PRIMARY KEY,         -- from (event id, target): the idempotency key
    event_id     uuid        NOT NULL REFERENCES hookgate.events (id) ON DELETE CASCADE,
    target       text        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending',
    attempts     integer     NOT NULL DEFAULT 0,  -- attempts started; fences a stale worker's result
    interruptions integer    NOT NULL DEFAULT 0,  -- attempts cut short (lease expired, released)
    due_at       timestamptz NOT NULL,            -- pending: next try; in_flight: lease expiry
    worker       text,
    last_outcome text,
    last_error   text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead', 'filtered')),
    CONSTRAINT deliveries_event_target_key UNIQUE (event_id, target)
);
-- The claim query walks this per target, so one target's backlog never hides another's.
CREATE INDEX deliveries_claim_idx ON hookgate.deliveries (target, due_at)
    WHERE status IN ('pending', 'in_flight');
-- Every claim and finish rewrites a row: vacuum early rather than let dead tuples pile up.
ALTER TABLE hookgate.deliveries SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);

CREATE TABLE hookgate.attempts (
    delivery_id      uuid        NOT NULL REFERENCES hookgate.deliveries (id) ON DELETE CASCADE,
    attempt          integer     NOT NULL,
    worker           text        NOT NULL,
    started_at       timestamptz NOT NULL,
    duration_ms      double precision,
    outcome          text,                        -- NULL while in flight
    status_code      integer,
    response_headers jsonb,
    response_body    bytea,                       -- the first 4 KiB
    error            text,
    PRIMARY KEY (delivery_id, attempt)
);
