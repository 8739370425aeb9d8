-- Day partitions of events, deliveries and attempts (migration 0017 defines the functions).

-- name: ensure_partitions
-- From $1 to $2 (UTC days): make those missing; safe for replicas to run at once.
SELECT hookgate.ensure_partitions($1::date, $2::date) AS made;

-- name: partition_days
-- The days that have an events partition, oldest first (names are events_pYYYYMMDD).
SELECT to_date(substr(c.relname, length('events_p') + 1), 'YYYYMMDD') AS day
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'hookgate.events'::regclass
  AND c.relname ~ '^events_p[0-9]{8}$'
ORDER BY day;

-- name: retire_day
-- Drop day $1's partitions, keeping what must outlive it (see the function).
SELECT dropped, kept FROM hookgate.retire_day($1::date, $2::text[], $3::timestamptz[], $4);

-- name: drop_retired
-- The retired days' tables, detached already: dropping them locks nothing in use.
SELECT hookgate.drop_retired() AS dropped;

-- name: raise_open_floor
-- The open floor from the day partitions (migration 0024), valid $2 seconds from $1.
SELECT hookgate.raise_open_floor($1, $2) AS floor;
