-- Retention and erasure: an audit row for every purge that removed (or, in a dry run,
-- would have removed) anything, so "who deleted evt_123, and why?" has an answer.
CREATE TABLE hookgate.purges (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    kind        text        NOT NULL,             -- retention (the policy) or erasure (asked for)
    actor       text        NOT NULL,             -- cli user@host, or the replica's worker name
    criteria    jsonb       NOT NULL,             -- match values are kept as sha256, never as given
    dry_run     boolean     NOT NULL,
    events      bigint      NOT NULL,             -- removed, or matched in a dry run
    kept_open   bigint      NOT NULL DEFAULT 0,   -- matched but kept: a delivery still pending
    rejected    bigint      NOT NULL DEFAULT 0,
    dedupe_keys bigint      NOT NULL DEFAULT 0,
    CONSTRAINT purges_kind_check CHECK (kind IN ('retention', 'erasure'))
);
