-- Deduplication keys and the log of refused requests.

-- One row per (source, provider key) while its window lasts. The primary key is what
-- makes two concurrent duplicates impossible: the second insert waits for the first
-- to commit and then finds its row.
CREATE TABLE hookgate.dedupe (
    source     text        NOT NULL,
    key        text        NOT NULL,
    event_id   uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (source, key)
);
CREATE INDEX dedupe_expires_at_idx ON hookgate.dedupe (expires_at);

-- Requests answered 401/403/429: capped per source per minute and purged after the
-- retention period, so a flood of forged requests cannot fill the disk.
CREATE TABLE hookgate.rejected (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text        NOT NULL,
    received_at timestamptz NOT NULL,
    status      integer     NOT NULL,
    reason      text        NOT NULL,
    method      text        NOT NULL,
    path        text        NOT NULL,
    query       text        NOT NULL,
    headers     jsonb       NOT NULL,
    body        bytea       NOT NULL,         -- the first 4 KiB
    peer        text
);
CREATE INDEX rejected_received_at_idx ON hookgate.rejected (received_at);
