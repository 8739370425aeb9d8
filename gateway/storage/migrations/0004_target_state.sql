-- Operator state per target, shared by every relay: a paused target's deliveries stay
-- pending (keeping their attempts) and are not claimed until it is resumed.
CREATE TABLE hookgate.targets (
    name       text        PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    reason     text,
    changed_at timestamptz NOT NULL,
    changed_by text
);
