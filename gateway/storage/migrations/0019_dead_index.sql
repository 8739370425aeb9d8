-- /metrics counts dead deliveries per target at every scrape: a partial index keeps that
-- an index-only count over the dead ones, however many have been delivered.
CREATE INDEX deliveries_dead_idx ON hookgate.deliveries (target) WHERE status = 'dead';
