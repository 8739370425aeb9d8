-- The route that made each delivery (an index into the config's `routes`), so that
-- route's middleware runs around the target's own chain.
ALTER TABLE hookgate.deliveries ADD COLUMN route integer;
