-- courriel schema version 4: full-text search and IMAP METADATA.
--
-- contents_fts: the decoded text of each message (head: header fields, decoded; body: the
-- text parts), indexed by trigrams so that SEARCH BODY / TEXT, which are substring searches
-- (RFC 9051 §6.4.4), run through the index. rowid = contents.id. Rows are added at
-- delivery, in the writer's transaction; messages stored before this version are indexed
-- by a background pass (contents.indexed = 0 until then; search reads those files).
CREATE VIRTUAL TABLE contents_fts USING fts5(head, body, tokenize = 'trigram');
ALTER TABLE contents ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX contents_unindexed ON contents (id) WHERE indexed = 0;

-- RFC 5464 METADATA: per-user server entries (mailbox_id 0) and mailbox entries.
CREATE TABLE metadata (
    user_id    INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,            -- 0: a server entry
    name       TEXT NOT NULL,               -- lower case, e.g. /private/comment
    value      BLOB NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, name)
) WITHOUT ROWID;
