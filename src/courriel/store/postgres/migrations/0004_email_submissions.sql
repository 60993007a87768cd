-- JMAP EmailSubmission records (RFC 8621 §7): see the SQLite migration 0010.
CREATE TABLE email_submissions (
    user_id bigint NOT NULL,
    id text NOT NULL,
    identity_id text NOT NULL,
    email_id text NOT NULL,
    thread_id text NOT NULL,
    envelope jsonb NOT NULL,
    send_at double precision NOT NULL,
    queue_id bigint,
    delivery jsonb NOT NULL DEFAULT '{}',
    created bigint NOT NULL,
    changed bigint NOT NULL,
    destroyed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX email_submissions_changed ON email_submissions (user_id, changed);
