-- FIFO per key on a target: deliveries with the same ordering_key are sent one at a
-- time, in `seq` order (arrival order); other keys go in parallel.
ALTER TABLE hookgate.deliveries ADD COLUMN ordering_key text;
ALTER TABLE hookgate.deliveries ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX deliveries_ordering_idx ON hookgate.deliveries (target, ordering_key, seq)
    WHERE ordering_key IS NOT NULL;
