PRAGMA user_version = 3;
BEGIN TRANSACTION;
CREATE TABLE aliases (
    address TEXT NOT NULL COLLATE NOCASE,            -- local@domain or @domain (catch-all)
    target  TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (address, target)
) WITHOUT ROWID;
INSERT INTO "aliases" VALUES('@example.test','bob@example.test');
INSERT INTO "aliases" VALUES('@example.test','ext@remote.test');
INSERT INTO "aliases" VALUES('postmaster@example.test','alice@example.test');
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
INSERT INTO "contents" VALUES(1,'20261129/dd2872fefb2cdfe0a2a2e418',77,2,NULL,NULL,'[null,"one",[["Bob",null,"bob","example.test"]],0,0,[[null,null,"alice","example.test"]],null,null,null,null]','["text","plain",[["charset","us-ascii"]],null,null,null,"7bit",7,1,null,null,[],null,null,null,0,70,77,[],null,null]','one','one','bob <bob@example.test>','alice@example.test','','','one','bob','alice','','bob','alice@example.test',NULL,NULL,NULL,'[["From"," Bob <bob@example.test>"],["To"," alice@example.test"],["Subject"," one"]]','first',0);
INSERT INTO "contents" VALUES(2,'20261129/7c5e4e071d30c118568e42bc',330,2,NULL,NULL,'[null,"=?utf-8?q?zw=C3=B6lf?=",[["=?utf-8?q?J=C3=B6rg?=",null,"j","example.org"]],0,0,[[null,null,"alice","example.test"]],null,null,null,null]','["multipart","mixed",[["boundary","b"]],null,null,null,"7bit",164,null,null,null,[],null,null,null,0,166,330,[["text","plain",[["charset","utf-8"]],null,null,null,"7bit",7,1,null,null,[],null,null,null,171,214,221,[],null,null],["application","octet-stream",[["name","x.bin"]],null,null,null,"base64",4,null,null,null,[],null,null,null,228,317,321,[],null,null]],null,null]','zwölf','zwölf','jörg <j@example.org>','alice@example.test','','','zwölf','j','alice','','jörg','alice@example.test',NULL,NULL,NULL,'[["From"," =?utf-8?q?J=C3=B6rg?= <j@example.org>"],["To"," alice@example.test"],["Subject"," =?utf-8?q?zw=C3=B6lf?="],["MIME-Version"," 1.0"],["Content-Type"," multipart/mixed; boundary=b"]]','Grüße',1);
CREATE TABLE domains (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created INTEGER NOT NULL
);
INSERT INTO "domains" VALUES(1,'example.test',1795911929);
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
INSERT INTO "expunged" VALUES(1,3,15);
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
    size          INTEGER NOT NULL DEFAULT 0, recent_uid INTEGER NOT NULL DEFAULT 1,
    UNIQUE (user_id, name)
);
INSERT INTO "mailboxes" VALUES(1,1,'INBOX',1795911929,4,15,NULL,0,2,1,0,407,1);
INSERT INTO "mailboxes" VALUES(2,1,'Sent',1795911930,1,3,'\Sent',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(3,1,'Drafts',1795911931,1,4,'\Drafts',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(4,1,'Trash',1795911932,1,5,'\Trash',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(5,1,'Junk',1795911933,1,6,'\Junk',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(6,1,'Archive',1795911934,1,7,'\Archive',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(7,2,'INBOX',1795911935,1,2,NULL,0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(8,2,'Sent',1795911936,1,3,'\Sent',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(9,2,'Drafts',1795911937,1,4,'\Drafts',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(10,2,'Trash',1795911938,1,5,'\Trash',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(11,2,'Junk',1795911939,1,6,'\Junk',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(12,2,'Archive',1795911940,1,7,'\Archive',0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(13,1,'Work',1795911941,1,11,NULL,0,0,0,0,0,1);
INSERT INTO "mailboxes" VALUES(14,1,'Work/2026',1795911942,3,13,NULL,0,2,1,0,407,1);
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
INSERT INTO "messages" VALUES(1,1,1,8,0,'',77,1795911929,1795911929);
INSERT INTO "messages" VALUES(1,2,2,9,1,' $Work ',330,1795911929,1795911929);
INSERT INTO "messages" VALUES(14,1,1,13,0,'',77,1795911929,1795911929);
INSERT INTO "messages" VALUES(14,2,2,13,1,' $Work ',330,1795911929,1795911929);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO "meta" VALUES('uidvalidity','1795911942');
CREATE TABLE queue (
    id        INTEGER PRIMARY KEY,
    blob      TEXT NOT NULL UNIQUE,
    size      INTEGER NOT NULL,
    mail_from TEXT NOT NULL,                    -- '' for the null reverse path
    envid     TEXT,
    ret       TEXT,                             -- FULL or HDRS
    smtputf8  INTEGER NOT NULL DEFAULT 0,
    body_8bit INTEGER NOT NULL DEFAULT 0,
    auth_user TEXT,
    source    TEXT NOT NULL DEFAULT '',         -- the SMTP transaction id, for the logs
    created   INTEGER NOT NULL
);
CREATE TABLE queue_recipients (
    id           INTEGER PRIMARY KEY,
    queue_id     INTEGER NOT NULL REFERENCES queue(id),
    address      TEXT NOT NULL,
    notify       TEXT,                          -- NEVER, or a list of SUCCESS FAILURE DELAY
    orcpt        TEXT,                          -- addr-type;address
    state        TEXT NOT NULL DEFAULT 'queued',  -- queued, deferred, delivered, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT
);
CREATE TABLE subscriptions (
    user_id INTEGER NOT NULL,
    name    TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;
INSERT INTO "subscriptions" VALUES(1,'Archive');
INSERT INTO "subscriptions" VALUES(1,'Drafts');
INSERT INTO "subscriptions" VALUES(1,'INBOX');
INSERT INTO "subscriptions" VALUES(1,'Junk');
INSERT INTO "subscriptions" VALUES(1,'Sent');
INSERT INTO "subscriptions" VALUES(1,'Trash');
INSERT INTO "subscriptions" VALUES(2,'Archive');
INSERT INTO "subscriptions" VALUES(2,'Drafts');
INSERT INTO "subscriptions" VALUES(2,'INBOX');
INSERT INTO "subscriptions" VALUES(2,'Junk');
INSERT INTO "subscriptions" VALUES(2,'Sent');
INSERT INTO "subscriptions" VALUES(2,'Trash');
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
INSERT INTO "users" VALUES(1,'alice@example.test',1,'$argon2id$v=19$m=19456,t=2,p=1$7xngnmH7QLIAzWdvgLVlTQ$nGw/Kxt5Qqnwd5Pa2o3y0S5yZwnJWhfXdzZwqutpRlo',X'770D7602A11B121118C0B71702959F98',4096,X'B024FDB8B33EA5443C8E621D37607C3F982639AC30326718807EE7F8A5607F56',X'D099C8A86B077438355073E15CD6A276595F35AFF0AA6B8EA76CF15FE2A580E3',NULL,0,0,15,0,1795911929);
INSERT INTO "users" VALUES(2,'bob@example.test',1,'$argon2id$v=19$m=19456,t=2,p=1$sHtzy66UTYZIvt3bJsFjWg$H55gm6oN1fjmrj9cX05Q+48AARfV+A/xFOlsUSZfnnE',X'AD66AE029ECE8CD038A4225555454D89',4096,X'FB8DD03A57D55EDDE68ABB596345F058D3BF113AEEE17FE51EA7DF0534007AFA',X'A13BCC57C673EEC12AE1886A1EEEFF9977D26542218800AB49F41E86F7B4B93E',NULL,10000000,0,7,0,1795911929);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (flags & 1) = 0;
CREATE INDEX messages_content ON messages (content_id);
CREATE INDEX queue_recipients_queue ON queue_recipients (queue_id);
CREATE INDEX queue_recipients_due ON queue_recipients (next_attempt) WHERE state IN ('queued', 'deferred');
COMMIT;
