-- The W3C traceparent hookgate started at ingest when the provider sent none (tracing on,
-- gateway/tracing.py): each delivery attempt's span is its child. NULL otherwise: a
-- provider's own traceparent is already stored with the request's headers.
--
-- On the partitioned parent (0017) the column reaches every day partition and the
-- default partition, and partitions made later (`CREATE TABLE ... LIKE`) have it too,
-- in the same place (last), so `retire_day`'s `SELECT *` copies still line up. No
-- default: adding it rewrites nothing.
ALTER TABLE hookgate.events ADD COLUMN traceparent text;
