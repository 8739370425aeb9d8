-- A token bucket per target, shared by every relay: the target's rate_limit holds across
-- all workers and replicas, not per process.
ALTER TABLE hookgate.targets ADD COLUMN tokens double precision;
ALTER TABLE hookgate.targets ADD COLUMN tokens_at timestamptz;
