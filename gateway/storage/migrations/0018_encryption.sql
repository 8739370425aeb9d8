-- Encryption at rest (gateway/storage/sealing.py): the key each row was sealed with
-- (NULL: in the clear), and every key ever used to write, so a replica started without
-- one of them refuses to run instead of failing on the first old row it reads.
ALTER TABLE hookgate.events ADD COLUMN key_id text;
ALTER TABLE hookgate.rejected ADD COLUMN key_id text;
CREATE TABLE hookgate.encryption_keys (
    key_id        text        PRIMARY KEY,
    registered_at timestamptz NOT NULL
);
