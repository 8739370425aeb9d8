-- The breaker may also open on a failure ratio, counted over tumbling windows of attempts.
ALTER TABLE hookgate.targets ADD COLUMN window_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE hookgate.targets ADD COLUMN window_failures integer NOT NULL DEFAULT 0;
