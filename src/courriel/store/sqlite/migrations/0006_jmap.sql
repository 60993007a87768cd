-- courriel schema version 6: account-wide change tracking (JMAP, RFC 8620 §5.2) and API tokens.
--
-- A message copy keeps the MODSEQ at which it appeared (created_modseq; 0 for copies stored
-- before this version), and its tombstone keeps that and its content id, so "which Emails
-- were created, updated or destroyed since state S" is answered from the rows alone: an Email
-- (a content shared by copies) existed at S if one of its copies was created at or before S.
ALTER TABLE messages ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE expunged ADD COLUMN content_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE expunged ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);

-- Mailboxes: the MODSEQ of their creation, and tombstones for deleted ones.
ALTER TABLE mailboxes ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE mailbox_tombstones (
    user_id    INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, mailbox_id)
) WITHOUT ROWID;

-- Bearer tokens for HTTP APIs (JMAP): only the SHA-256 of the random secret is kept.
CREATE TABLE access_tokens (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id),
    hash      BLOB NOT NULL UNIQUE,
    label     TEXT NOT NULL DEFAULT '',
    created   INTEGER NOT NULL,
    last_used INTEGER
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
