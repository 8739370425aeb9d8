-- A circuit breaker per target, shared by every relay: after `failures` consecutive
-- failed attempts the target is not claimed until breaker_until; then one probe goes.
ALTER TABLE hookgate.targets ADD COLUMN failures integer NOT NULL DEFAULT 0;
ALTER TABLE hookgate.targets ADD COLUMN breaker_until timestamptz;
ALTER TABLE hookgate.targets ADD COLUMN breaker_reason text;
