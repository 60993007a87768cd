-- courriel schema version 8: message events (the journey of any stored message).
--
-- Facts about one stored content of one user, written after the fact and not fsynced on
-- the acknowledged path: "delivered" (mailboxes, Sieve actions, junk verdict), "retrieved"
-- (POP3 RETR/TOP, IMAP FETCH of the body: once per session and message), "relayed"
-- (outbound delivery). details is a JSON object. Deleted with the user.
CREATE TABLE message_events (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    protocol TEXT NOT NULL DEFAULT '',
    client TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX message_events_content ON message_events (user_id, content_id);
CREATE INDEX message_events_time ON message_events (time);
