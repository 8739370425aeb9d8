-- Failure alerts (gateway/alerting.py): when each kind of alert about each target was
-- last sent, shared by every relay, so a failing target sends one alert per interval
-- however many workers see it fail. Alerts themselves are ordinary events (source
-- `_alerts`) with deliveries to the alert targets; this table only says whether to
-- write one. `suppressed` counts those not sent since the last one; the next one sent
-- reports it (`reported`, what the latest sent alert said was suppressed before it).
CREATE TABLE hookgate.alert_state (
    target     text        NOT NULL,  -- the target the alert is about
    kind       text        NOT NULL,  -- delivery.dead, breaker.opened, target.paused, ...
    last_at    timestamptz NOT NULL,  -- the latest alert sent
    sent       boolean     NOT NULL,  -- whether the latest one asked for was sent
    suppressed integer     NOT NULL DEFAULT 0,
    reported   integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (target, kind)
);
