PRAGMA user_version = 1;
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
INSERT INTO "contents" VALUES(1,'20261129/cadddde2844a378ecdbdd5dc',77,2,NULL,NULL,'[null,"one",[["Bob",null,"bob","example.test"]],0,0,[[null,null,"alice","example.test"]],null,null,null,null]','["text","plain",[["charset","us-ascii"]],null,null,null,"7bit",7,1,null,null,[],null,null,null,0,70,77,[],null,null]','one','one','bob <bob@example.test>','alice@example.test','','','one','bob','alice','','bob','alice@example.test',NULL,NULL,NULL,'[["From"," Bob <bob@example.test>"],["To"," alice@example.test"],["Subject"," one"]]','first',0);
INSERT INTO "contents" VALUES(2,'20261129/c4210d1f51a7437ea831d8a6',330,2,NULL,NULL,'[null,"=?utf-8?q?zw=C3=B6lf?=",[["=?utf-8?q?J=C3=B6rg?=",null,"j","example.org"]],0,0,[[null,null,"alice","example.test"]],null,null,null,null]','["multipart","mixed",[["boundary","b"]],null,null,null,"7bit",164,null,null,null,[],null,null,null,0,166,330,[["text","plain",[["charset","utf-8"]],null,null,null,"7bit",7,1,null,null,[],null,null,null,171,214,221,[],null,null],["application","octet-stream",[["name","x.bin"]],null,null,null,"base64",4,null,null,null,[],null,null,null,228,317,321,[],null,null]],null,null]','zwölf','zwölf','jörg <j@example.org>','alice@example.test','','','zwölf','j','alice','','jörg','alice@example.test',NULL,NULL,NULL,'[["From"," =?utf-8?q?J=C3=B6rg?= <j@example.org>"],["To"," alice@example.test"],["Subject"," =?utf-8?q?zw=C3=B6lf?="],["MIME-Version"," 1.0"],["Content-Type"," multipart/mixed; boundary=b"]]','Grüße',1);
CREATE TABLE domains (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created INTEGER NOT NULL
);
INSERT INTO "domains" VALUES(1,'example.test',1795911876);
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
    size          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, name)
);
INSERT INTO "mailboxes" VALUES(1,1,'INBOX',1795911876,4,15,NULL,0,2,1,0,407);
INSERT INTO "mailboxes" VALUES(2,1,'Sent',1795911877,1,3,'\Sent',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(3,1,'Drafts',1795911878,1,4,'\Drafts',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(4,1,'Trash',1795911879,1,5,'\Trash',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(5,1,'Junk',1795911880,1,6,'\Junk',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(6,1,'Archive',1795911881,1,7,'\Archive',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(7,2,'INBOX',1795911882,1,2,NULL,0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(8,2,'Sent',1795911883,1,3,'\Sent',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(9,2,'Drafts',1795911884,1,4,'\Drafts',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(10,2,'Trash',1795911885,1,5,'\Trash',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(11,2,'Junk',1795911886,1,6,'\Junk',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(12,2,'Archive',1795911887,1,7,'\Archive',0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(13,1,'Work',1795911888,1,11,NULL,0,0,0,0,0);
INSERT INTO "mailboxes" VALUES(14,1,'Work/2026',1795911889,3,13,NULL,0,2,1,0,407);
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
INSERT INTO "messages" VALUES(1,1,1,8,0,'',77,1795911876,1795911876);
INSERT INTO "messages" VALUES(1,2,2,9,1,' $Work ',330,1795911876,1795911876);
INSERT INTO "messages" VALUES(14,1,1,13,0,'',77,1795911876,1795911876);
INSERT INTO "messages" VALUES(14,2,2,13,1,' $Work ',330,1795911876,1795911876);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO "meta" VALUES('uidvalidity','1795911889');
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
INSERT INTO "users" VALUES(1,'alice@example.test',1,'$argon2id$v=19$m=19456,t=2,p=1$ef/RTe+7ooI9Aeh5ui+ofg$/2kHtASA57RgnnVU59cdJSfiJVOA4xVN+eeD4nWCYIA',X'5448EEEA1324D73A4DB028C19FD9AA72',4096,X'9441E4E4BFB17F873E6D4EB09A7A02FB31EF465A8259F8118733A83D7C3B326C',X'669FD962B34040BF244B8F4D1388396782889D10CDC3D4AFAC816FAFFF78F419',NULL,0,0,15,0,1795911876);
INSERT INTO "users" VALUES(2,'bob@example.test',1,'$argon2id$v=19$m=19456,t=2,p=1$INkoMPhG0Ygv4AW6NhACWg$g9hZurU9Xo5n3ccIb6Ni6LTWf+Ejp282nI/dn9jJ/34',X'09C9E1ED802E16574452576195E176EF',4096,X'B5B43A755A842E79D3B049F270CC8CF6537E5E787E9BAC976BE85B3477F8E4A7',X'6903F75D92CF45ECF9B13FE4D1B24A125F7BF5686C52125171B57E8E614F8F23',NULL,10000000,0,7,0,1795911876);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (flags & 1) = 0;
CREATE INDEX messages_content ON messages (content_id);
COMMIT;
