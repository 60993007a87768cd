-- courriel schema version 1. Times are UTC seconds since the epoch.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE domains (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created INTEGER NOT NULL
);

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    address          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    domain_id        INTEGER NOT NULL REFERENCES domains(id),
    password_hash    TEXT,
    scram_salt       BLOB,
    scram_iterations INTEGER NOT NULL DEFAULT 0,
    scram_stored_key BLOB,
    scram_server_key BLOB,
    apop_secret      TEXT,
    quota_bytes      INTEGER NOT NULL DEFAULT 0,
    quota_messages   INTEGER NOT NULL DEFAULT 0,
    modseq           INTEGER NOT NULL DEFAULT 1,   -- the user's MODSEQ counter (RFC 7162)
    disabled         INTEGER NOT NULL DEFAULT 0,
    created          INTEGER NOT NULL
);

CREATE TABLE aliases (
    address TEXT NOT NULL COLLATE NOCASE,            -- local@domain or @domain (catch-all)
    target  TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (address, target)
) WITHOUT ROWID;

CREATE TABLE mailboxes (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    name          TEXT NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uidnext       INTEGER NOT NULL DEFAULT 1,
    highestmodseq INTEGER NOT NULL,
    special_use   TEXT,
    noselect      INTEGER NOT NULL DEFAULT 0,
    messages      INTEGER NOT NULL DEFAULT 0,
    unseen        INTEGER NOT NULL DEFAULT 0,
    deleted       INTEGER NOT NULL DEFAULT 0,
    size          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, name)
);

CREATE TABLE subscriptions (
    user_id INTEGER NOT NULL,
    name    TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

-- One row per stored message file, shared by its copies (refs counts them).
CREATE TABLE contents (
    id             INTEGER PRIMARY KEY,
    blob           TEXT NOT NULL UNIQUE,
    size           INTEGER NOT NULL,
    refs           INTEGER NOT NULL,
    mail_from      TEXT,
    sent_date      INTEGER,
    envelope       TEXT NOT NULL,
    body           TEXT NOT NULL,
    subject        TEXT NOT NULL DEFAULT '',
    base_subject   TEXT NOT NULL DEFAULT '',       -- RFC 5256 §2.1, casefolded
    from_cf        TEXT NOT NULL DEFAULT '',       -- casefolded, for SEARCH
    to_cf          TEXT NOT NULL DEFAULT '',
    cc_cf          TEXT NOT NULL DEFAULT '',
    bcc_cf         TEXT NOT NULL DEFAULT '',
    subject_cf     TEXT NOT NULL DEFAULT '',
    sort_from      TEXT NOT NULL DEFAULT '',       -- RFC 5256 sort keys
    sort_to        TEXT NOT NULL DEFAULT '',
    sort_cc        TEXT NOT NULL DEFAULT '',
    display_from   TEXT NOT NULL DEFAULT '',       -- RFC 5957
    display_to     TEXT NOT NULL DEFAULT '',
    message_id     TEXT,
    in_reply_to    TEXT,
    refs_header    TEXT,
    headers        TEXT NOT NULL DEFAULT '[]',     -- JSON [[name, raw value], ...]
    preview        TEXT NOT NULL DEFAULT '',
    has_attachment INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL,
    uid           INTEGER NOT NULL,
    content_id    INTEGER NOT NULL REFERENCES contents(id),
    modseq        INTEGER NOT NULL,
    flags         INTEGER NOT NULL DEFAULT 0,     -- bit set, see store.api.Flag
    keywords      TEXT NOT NULL DEFAULT '',        -- ' kw1 kw2 ' (sorted, space-delimited) or ''
    size          INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    savedate      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (flags & 1) = 0;
CREATE INDEX messages_content ON messages (content_id);

-- Expunged UIDs with the MODSEQ of their removal (RFC 7162 VANISHED, JMAP changes).
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
