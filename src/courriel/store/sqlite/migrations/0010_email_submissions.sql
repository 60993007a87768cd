-- courriel schema version 10: JMAP EmailSubmission records (RFC 8621 §7).
--
-- One row per submission made over JMAP, for EmailSubmission/get, /changes and /query:
-- envelope and delivery (deliveryStatus by recipient) are JSON objects. created and changed
-- are the user's submission change numbers (the state string is the largest changed); a
-- destroyed submission stays as a tombstone (destroyed = 1) so /changes can report it.
-- Deleted with the user.
CREATE TABLE email_submissions (
    user_id INTEGER NOT NULL,
    id TEXT NOT NULL,
    identity_id TEXT NOT NULL,
    email_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    send_at REAL NOT NULL,
    queue_id INTEGER,
    delivery TEXT NOT NULL DEFAULT '{}',
    created INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    destroyed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX email_submissions_changed ON email_submissions (user_id, changed);
