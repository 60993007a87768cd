-- courriel schema version 5: Sieve scripts (RFC 5228, managed by ManageSieve, RFC 5804) and
-- vacation tracking (RFC 5230 §4.2: one reply per sender and handle within :days).
CREATE TABLE sieve_scripts (
    user_id  INTEGER NOT NULL,
    name     TEXT NOT NULL,                 -- RFC 5804 §1.6: case-sensitive, UTF-8
    content  TEXT NOT NULL,
    active   INTEGER NOT NULL DEFAULT 0,    -- at most one per user
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (user_id) WHERE active = 1;

CREATE TABLE sieve_vacation (
    user_id  INTEGER NOT NULL,
    handle   TEXT NOT NULL,                 -- the :handle, or a digest of the reply's text
    sender   TEXT NOT NULL,                 -- lower-cased envelope sender replied to
    sent_at  INTEGER NOT NULL,              -- UTC seconds of the last reply
    PRIMARY KEY (user_id, handle, sender)
) WITHOUT ROWID;
