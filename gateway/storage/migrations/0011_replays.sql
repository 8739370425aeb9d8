-- Replays and their audit, operator actions on deliveries, and what the inspector reads.

-- One row per replay request, dry runs included: who asked, when, with which filter,
-- and what it came to. A dry run keeps a sample of what it would have touched.
CREATE TABLE hookgate.replays (
    id          uuid        PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    dry_run     boolean     NOT NULL,
    event_id    uuid,                             -- set for the replay of one event
    filter      jsonb,                            -- set for a bulk replay
    targets     text[],
    new_key     boolean     NOT NULL DEFAULT false,
    deliveries  integer     NOT NULL,
    by_target   jsonb       NOT NULL,
    sample      jsonb       NOT NULL DEFAULT '[]'
);
CREATE INDEX replays_created_at_idx ON hookgate.replays (created_at);

-- Every delivery a real replay re-queued, with what it was before, so a delivery's
-- history shows each replay (which, who) and which attempts came after it. No foreign
-- keys: a bulk replay writes 100,000 of these in one statement, and a per-row check
-- against replays (written in the same transaction) would only cost time.
CREATE TABLE hookgate.replayed (
    replay_id       uuid    NOT NULL,
    delivery_id     uuid    NOT NULL,
    previous_id     uuid,                         -- the key it had, when new_key minted one
    previous_status text,                         -- NULL: the replay created the delivery
    attempts_before integer NOT NULL,
    PRIMARY KEY (replay_id, delivery_id)
);
CREATE INDEX replayed_delivery_idx ON hookgate.replayed (delivery_id);

-- A replay's fresh retry budget: the retry schedule counts attempts after this many.
ALTER TABLE hookgate.deliveries ADD COLUMN budget_from integer NOT NULL DEFAULT 0;
-- A dead delivery released from blocking its FIFO key keeps the key here, for display.
ALTER TABLE hookgate.deliveries ADD COLUMN released_key text;

-- An operator may cancel a pending delivery: it ends `cancelled`, never sent again.
-- A bulk replay puts deliveries in `queued`: outside the claim index, so the relay never
-- sees them, until the replay feeder moves them to `pending` as their target has room.
ALTER TABLE hookgate.deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE hookgate.deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead', 'filtered', 'cancelled',
                      'queued'));
CREATE INDEX deliveries_queued_idx ON hookgate.deliveries (target, seq) WHERE status = 'queued';

-- Per-target latency and success over the last hour, and the live attempt stream, read
-- attempts by start time; appends land at the index's right edge.
CREATE INDEX attempts_started_at_idx ON hookgate.attempts (started_at);
-- The dead-letter queue and the bulk-replay filter look deliveries up by status.
CREATE INDEX deliveries_dead_idx ON hookgate.deliveries (target, id) WHERE status = 'dead';
