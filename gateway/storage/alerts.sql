-- Failure alerts. Loaded with queries.sql (gateway/storage/queries.py).

-- name: claim_alerts
-- Which of these alerts to send: one per (target, kind) per interval ($4 seconds) across
-- every relay. Runs in the transaction that writes the alert events, so the relay that
-- wins the row (the upsert takes its lock; a concurrent one waits, then sees last_at
-- moved and loses) is the one whose alert commits. $3: how many of each the caller had
-- (the others count as suppressed). In SET, `s.` is the row before this update, so
-- `reported` takes the count the winning alert reports.
INSERT INTO hookgate.alert_state AS s (target, kind, last_at, sent, suppressed, reported)
SELECT w.target, w.kind, $5, true, w.n - 1, 0
FROM unnest($1::text[], $2::text[], $3::integer[]) AS w (target, kind, n)
ORDER BY w.target, w.kind  -- rows locked in one order by every relay: no deadlock
ON CONFLICT (target, kind) DO UPDATE
    SET last_at = CASE WHEN s.last_at <= $5 - make_interval(secs => $4) THEN $5
                       ELSE s.last_at END,
        sent = s.last_at <= $5 - make_interval(secs => $4),
        reported = CASE WHEN s.last_at <= $5 - make_interval(secs => $4) THEN s.suppressed
                        ELSE s.reported END,
        suppressed = CASE WHEN s.last_at <= $5 - make_interval(secs => $4)
                          THEN excluded.suppressed
                          ELSE s.suppressed + excluded.suppressed + 1 END
RETURNING s.target, s.kind, s.sent, s.reported;
