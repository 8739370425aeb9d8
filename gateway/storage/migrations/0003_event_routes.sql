-- Which of its source's routes an event matched and which it did not (indexes into the
-- config's `routes` list at the time it was received), so "why did billing not get
-- evt_123?" has an answer.
ALTER TABLE hookgate.events ADD COLUMN routes jsonb;
