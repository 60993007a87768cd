-- courriel PostgreSQL schema version 1: the SQLite schema versions 1-7 in one step.
-- Times are UTC seconds since the epoch (bigint), as in the SQLite backend, so that
-- `courriel store copy` moves rows without conversion. Case-insensitive names (addresses,
-- domains, aliases) have unique indexes on lower(...), like SQLite's COLLATE NOCASE.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A server-wide counter, so a recreated mailbox name never reuses a UIDVALIDITY.
CREATE SEQUENCE uidvalidity_seq MINVALUE 1 MAXVALUE 2147483647;
SELECT setval('uidvalidity_seq', GREATEST(1, (extract(epoch FROM now())::bigint & 2147483647) - 1));

CREATE TABLE domains (
    id      bigserial PRIMARY KEY,
    name    text NOT NULL,
    created bigint NOT NULL
);
CREATE UNIQUE INDEX domains_name ON domains (lower(name));

CREATE TABLE users (
    id               bigserial PRIMARY KEY,
    address          text NOT NULL,
    domain_id        bigint NOT NULL REFERENCES domains(id),
    password_hash    text,
    scram_salt       bytea,
    scram_iterations integer NOT NULL DEFAULT 0,
    scram_stored_key bytea,
    scram_server_key bytea,
    apop_secret      text,
    quota_bytes      bigint NOT NULL DEFAULT 0,
    quota_messages   bigint NOT NULL DEFAULT 0,
    modseq           bigint NOT NULL DEFAULT 1,   -- the user's MODSEQ counter (RFC 7162)
    disabled         boolean NOT NULL DEFAULT false,
    created          bigint NOT NULL
);
CREATE UNIQUE INDEX users_address ON users (lower(address));
CREATE INDEX users_domain ON users (domain_id);

CREATE TABLE aliases (
    address text NOT NULL,            -- local@domain or @domain (catch-all)
    target  text NOT NULL
);
CREATE UNIQUE INDEX aliases_pair ON aliases (lower(address), lower(target));

CREATE TABLE mailboxes (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users(id),
    name           text NOT NULL,
    uidvalidity    bigint NOT NULL,
    uidnext        bigint NOT NULL DEFAULT 1,
    highestmodseq  bigint NOT NULL,
    special_use    text,
    noselect       boolean NOT NULL DEFAULT false,
    messages       bigint NOT NULL DEFAULT 0,
    unseen         bigint NOT NULL DEFAULT 0,
    deleted        bigint NOT NULL DEFAULT 0,
    size           bigint NOT NULL DEFAULT 0,
    recent_uid     bigint NOT NULL DEFAULT 1,     -- RFC 3501 §2.3.2 \Recent claims
    created_modseq bigint NOT NULL DEFAULT 0,
    UNIQUE (user_id, name)
);

CREATE TABLE mailbox_tombstones (
    user_id    bigint NOT NULL,
    mailbox_id bigint NOT NULL,
    modseq     bigint NOT NULL,
    PRIMARY KEY (user_id, mailbox_id)
);

CREATE TABLE subscriptions (
    user_id bigint NOT NULL,
    name    text NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- Message bytes when [store] blob_dir is empty: one row per blob (messages and queue).
CREATE TABLE blob_data (
    blob text PRIMARY KEY,
    data bytea NOT NULL
);

-- One row per stored message, shared by its copies (refs counts them).
CREATE TABLE contents (
    id             bigserial PRIMARY KEY,
    blob           text NOT NULL UNIQUE,
    size           bigint NOT NULL,
    refs           integer NOT NULL,
    mail_from      text,
    sent_date      bigint,
    envelope       text NOT NULL,
    body           text NOT NULL,
    subject        text NOT NULL DEFAULT '',
    base_subject   text NOT NULL DEFAULT '',
    from_cf        text NOT NULL DEFAULT '',
    to_cf          text NOT NULL DEFAULT '',
    cc_cf          text NOT NULL DEFAULT '',
    bcc_cf         text NOT NULL DEFAULT '',
    subject_cf     text NOT NULL DEFAULT '',
    sort_from      text NOT NULL DEFAULT '',
    sort_to        text NOT NULL DEFAULT '',
    sort_cc        text NOT NULL DEFAULT '',
    display_from   text NOT NULL DEFAULT '',
    display_to     text NOT NULL DEFAULT '',
    message_id     text,
    in_reply_to    text,
    refs_header    text,
    headers        text NOT NULL DEFAULT '[]',
    preview        text NOT NULL DEFAULT '',
    has_attachment boolean NOT NULL DEFAULT false,
    thread_id      text                            -- RFC 8474 THREADID key (store.content.thread_key)
);
CREATE INDEX contents_thread ON contents (thread_id) WHERE thread_id IS NOT NULL;

-- Full text for SEARCH BODY/TEXT and header searches: casefolded decoded header lines
-- ("name: value") and body text, with trigram GIN indexes, so that a substring test
-- (LIKE, or a regular expression for one header) runs through the index (pg_trgm).
CREATE TABLE contents_text (
    content_id bigint PRIMARY KEY,
    head       text NOT NULL,
    body       text NOT NULL
);
CREATE INDEX contents_text_head ON contents_text USING gin (head gin_trgm_ops);
CREATE INDEX contents_text_body ON contents_text USING gin (body gin_trgm_ops);

CREATE TABLE messages (
    mailbox_id     bigint NOT NULL,
    uid            bigint NOT NULL,
    content_id     bigint NOT NULL REFERENCES contents(id),
    modseq         bigint NOT NULL,
    flags          integer NOT NULL DEFAULT 0,     -- bit set, see store.api.Flag
    keywords       text NOT NULL DEFAULT '',        -- ' kw1 kw2 ' (sorted, space-delimited) or ''
    size           bigint NOT NULL,
    internal_date  bigint NOT NULL,
    savedate       bigint NOT NULL,
    created_modseq bigint NOT NULL DEFAULT 0,
    sort_date      bigint NOT NULL DEFAULT 0,      -- COALESCE(sent_date, internal_date)
    sort_subject   text NOT NULL DEFAULT '',       -- contents.base_subject
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_sort_date ON messages (mailbox_id, sort_date, uid);
CREATE INDEX messages_sort_subject ON messages (mailbox_id, (sort_subject COLLATE "C"), uid);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (flags & 1) = 0;
CREATE INDEX messages_content ON messages (content_id);

-- Expunged UIDs with the MODSEQ of their removal (RFC 7162 VANISHED, JMAP changes).
CREATE TABLE expunged (
    mailbox_id     bigint NOT NULL,
    uid            bigint NOT NULL,
    modseq         bigint NOT NULL,
    content_id     bigint NOT NULL DEFAULT 0,
    created_modseq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);

-- The outbound queue: a row per message, a row per recipient with its own state.
CREATE TABLE queue (
    id        bigserial PRIMARY KEY,
    blob      text NOT NULL UNIQUE,
    size      bigint NOT NULL,
    mail_from text NOT NULL,
    envid     text,
    ret       text,
    smtputf8  boolean NOT NULL DEFAULT false,
    body_8bit boolean NOT NULL DEFAULT false,
    auth_user text,
    source    text NOT NULL DEFAULT '',
    created   bigint NOT NULL
);

CREATE TABLE queue_recipients (
    id           bigserial PRIMARY KEY,
    queue_id     bigint NOT NULL REFERENCES queue(id),
    address      text NOT NULL,
    notify       text,
    orcpt        text,
    state        text NOT NULL DEFAULT 'queued',
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt bigint NOT NULL,
    last_error   text,
    claimed_by   text,                          -- the node delivering it now (see Store.due_queue)
    claimed_until bigint
);
CREATE INDEX queue_recipients_queue ON queue_recipients (queue_id);
CREATE INDEX queue_recipients_due ON queue_recipients (next_attempt) WHERE state IN ('queued', 'deferred');

-- RFC 5464 METADATA: per-user server entries (mailbox_id 0) and mailbox entries.
CREATE TABLE metadata (
    user_id    bigint NOT NULL,
    mailbox_id bigint NOT NULL,
    name       text NOT NULL,
    value      bytea NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, name)
);

CREATE TABLE sieve_scripts (
    user_id bigint NOT NULL,
    name    text NOT NULL,
    content text NOT NULL,
    active  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, name)
);
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (user_id) WHERE active;

CREATE TABLE sieve_vacation (
    user_id bigint NOT NULL,
    handle  text NOT NULL,
    sender  text NOT NULL,
    sent_at bigint NOT NULL,
    PRIMARY KEY (user_id, handle, sender)
);

CREATE TABLE access_tokens (
    id        bigserial PRIMARY KEY,
    user_id   bigint NOT NULL REFERENCES users(id),
    hash      bytea NOT NULL UNIQUE,
    label     text NOT NULL DEFAULT '',
    created   bigint NOT NULL,
    last_used bigint
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);

-- Change batches too large for a NOTIFY payload: the notification names the row.
CREATE TABLE change_log (
    id      bigserial PRIMARY KEY,
    created bigint NOT NULL,
    payload text NOT NULL
);
