PRAGMA user_version = 11;
BEGIN TRANSACTION;
CREATE TABLE access_tokens (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id),
    hash      BLOB NOT NULL UNIQUE,
    label     TEXT NOT NULL DEFAULT '',
    created   INTEGER NOT NULL,
    last_used INTEGER
);
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
, indexed INTEGER NOT NULL DEFAULT 0, thread_id TEXT);
INSERT INTO "contents" VALUES(1,'20261129/18ec745b984860898e98580f',77,2,NULL,NULL,'[null,"one",[["Bob",null,"bob","example.test"]],0,0,[[null,null,"alice","example.test"]],null,null,null,null]','["text","plain",[["charset","us-ascii"]],null,null,null,"7bit",7,1,null,null,[],null,null,null,0,70,77,[],null,null]','one','one','bob <bob@example.test>','alice@example.test','','','one','bob','alice','','bob','alice@example.test',NULL,NULL,NULL,'[["From"," Bob <bob@example.test>"],["To"," alice@example.test"],["Subject"," one"]]','first',0,1,NULL);
INSERT INTO "contents" VALUES(2,'20261129/18ec745b984f39d7ad0a165b',330,2,NULL,NULL,'[null,"=?utf-8?q?zw=C3=B6lf?=",[["=?utf-8?q?J=C3=B6rg?=",null,"j","example.org"]],0,0,[[null,null,"alice","example.test"]],null,null,null,null]','["multipart","mixed",[["boundary","b"]],null,null,null,"7bit",164,null,null,null,[],null,null,null,0,166,330,[["text","plain",[["charset","utf-8"]],null,null,null,"7bit",7,1,null,null,[],null,null,null,171,214,221,[],null,null],["application","octet-stream",[["name","x.bin"]],null,null,null,"base64",4,null,null,null,[],null,null,null,228,317,321,[],null,null]],null,null]','zwölf','zwölf','jörg <j@example.org>','alice@example.test','','','zwölf','j','alice','','jörg','alice@example.test',NULL,NULL,NULL,'[["From"," =?utf-8?q?J=C3=B6rg?= <j@example.org>"],["To"," alice@example.test"],["Subject"," =?utf-8?q?zw=C3=B6lf?="],["MIME-Version"," 1.0"],["Content-Type"," multipart/mixed; boundary=b"]]','Grüße',1,1,NULL);
PRAGMA writable_schema=ON;
INSERT INTO sqlite_master(type,name,tbl_name,rootpage,sql)VALUES('table','contents_fts','contents_fts',0,'CREATE VIRTUAL TABLE contents_fts USING fts5(head, body, tokenize = ''trigram'')');
CREATE TABLE 'contents_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO "contents_fts_config" VALUES('version',4);
CREATE TABLE 'contents_fts_content'(id INTEGER PRIMARY KEY, c0, c1);
INSERT INTO "contents_fts_content" VALUES(1,'From: Bob <bob@example.test>
To: alice@example.test
Subject: one','first
');
INSERT INTO "contents_fts_content" VALUES(2,'From: Jörg <j@example.org>
To: alice@example.test
Subject: zwölf
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b','Grüße');
CREATE TABLE 'contents_fts_data'(id INTEGER PRIMARY KEY, block BLOB);
INSERT INTO "contents_fts_data" VALUES(1,X'02813807');
INSERT INTO "contents_fts_data" VALUES(10,X'000000000101010001010101');
INSERT INTO "contents_fts_data" VALUES(137438953473,X'0000045A04300A636F02025402026D69020242020273750102350102330202746F01021E01021C010320312E02025002023C6201020B03016A02020C0202616C0102220102200202626F01020701027302036AC3B602020702026D7502026202026F6E01023E02027A7702023C01032D747902025C0202766502024701032E300A02025202026F72020217020274650104181A01022E01032F6D6902026C0103300A630202530103312E3002025101033A203102024F03016101022101021F03016201020603016A02020603016D02026103016F01023D03017A02023B01033B206202027201033C626F01020C02026A4002020D01033E0A7401021D01021B01034065780104101A01040F190103616C6901022301022102026D700104131A0104121902027274020269030179020279010362203C01020A0202406501020F02026A6501023801023602026F6201040807030175020274010363654001022601022402026F6E0202550202743A01023B0102390103643B20020271020261720202780103652D7602024602022E6F0202160301740104171A01022D02023A20020260020240650102270102250202637401023A0102380202643B02027002026E74020259020272730202490202737401041A1A010230020278610104111A010410190103660A6D0202410202697201060101020202726F010202010202010367203C02020B02023E0A02021A020372C3BC0206010102010369636501022501022302026D6502024402026F6E02024C020270610202670202727301060101030202786502026E01036A406502020E020265630102390102370203C3B67202020801036C652E0104161A010415190202660A020240020269630102240102220202746902026501036D3A200102050102050202652D0202450202696D02024303017802026D0202706C0104141A010413190202756C02026301036E3A2002024E020264610202770202742D02025A03016502025701036F3A2001022001021E0202622001020903014001020E02026D3A01020401020402026E3A02024D03016501023F030174020256020272670202180202756E02027501037061720202680202653A02025F02026C650104151A01041419010372672002020A03013E02021902026F6D0102030102030202736902024A03017401060101040202742F02026A0202793D02027A0204C3BCC39F0206010103010373696F02024B0202740A01083301010501023103013E01021B020275620102360102340103740A7301023401023202022D7402025B02022F6D02026B02023A2001023C01023A02023E0A01021C0202656E0202580301730104191A01022F0202697002026602026F3A01021F01021D0202797002025D010375626A01023701023502026C7402026402026E640202760103766572020248010477C3B66C02023E010378616D0104121A010411190202656402026F0103793D6202027B0202706502025E01047A77C3B602023D0104C3B66C6602023F030272670202090204BCC39F6502060101040408070A0A0807060A0A08070707080708070B080808080906060606060808070B0D0B0C070608070A08060B070A080708070A070A0A0707070B0C08090A08070A0B0707070907080A080D070A070B0707060C07080707060B07060A070606070708070C08060A070807070B080D060A0B07070A07070A070A070B070708090D070807090907');
CREATE TABLE 'contents_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
INSERT INTO "contents_fts_docsize" VALUES(1,X'3E04');
INSERT INTO "contents_fts_docsize" VALUES(2,X'7A03');
CREATE TABLE 'contents_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
INSERT INTO "contents_fts_idx" VALUES(1,X'',2);
CREATE TABLE domains (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created INTEGER NOT NULL
);
INSERT INTO "domains" VALUES(1,'example.test',1795938288);
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
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL, content_id INTEGER NOT NULL DEFAULT 0, created_modseq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
INSERT INTO "expunged" VALUES(1,3,15,3,10);
CREATE TABLE mailbox_tombstones (
    user_id    INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, mailbox_id)
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
    size          INTEGER NOT NULL DEFAULT 0, recent_uid INTEGER NOT NULL DEFAULT 1, created_modseq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, name)
);
INSERT INTO "mailboxes" VALUES(1,1,'INBOX',1795938288,4,15,NULL,0,2,1,0,407,1,2);
INSERT INTO "mailboxes" VALUES(2,1,'Sent',1795938289,1,3,'\Sent',0,0,0,0,0,1,3);
INSERT INTO "mailboxes" VALUES(3,1,'Drafts',1795938290,1,4,'\Drafts',0,0,0,0,0,1,4);
INSERT INTO "mailboxes" VALUES(4,1,'Trash',1795938291,1,5,'\Trash',0,0,0,0,0,1,5);
INSERT INTO "mailboxes" VALUES(5,1,'Junk',1795938292,1,6,'\Junk',0,0,0,0,0,1,6);
INSERT INTO "mailboxes" VALUES(6,1,'Archive',1795938293,1,7,'\Archive',0,0,0,0,0,1,7);
INSERT INTO "mailboxes" VALUES(7,2,'INBOX',1795938294,1,2,NULL,0,0,0,0,0,1,2);
INSERT INTO "mailboxes" VALUES(8,2,'Sent',1795938295,1,3,'\Sent',0,0,0,0,0,1,3);
INSERT INTO "mailboxes" VALUES(9,2,'Drafts',1795938296,1,4,'\Drafts',0,0,0,0,0,1,4);
INSERT INTO "mailboxes" VALUES(10,2,'Trash',1795938297,1,5,'\Trash',0,0,0,0,0,1,5);
INSERT INTO "mailboxes" VALUES(11,2,'Junk',1795938298,1,6,'\Junk',0,0,0,0,0,1,6);
INSERT INTO "mailboxes" VALUES(12,2,'Archive',1795938299,1,7,'\Archive',0,0,0,0,0,1,7);
INSERT INTO "mailboxes" VALUES(13,1,'Work',1795938300,1,11,NULL,0,0,0,0,0,1,11);
INSERT INTO "mailboxes" VALUES(14,1,'Work/2026',1795938301,3,13,NULL,0,2,1,0,407,1,12);
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
CREATE TABLE messages (
    mailbox_id    INTEGER NOT NULL,
    uid           INTEGER NOT NULL,
    content_id    INTEGER NOT NULL REFERENCES contents(id),
    modseq        INTEGER NOT NULL,
    flags         INTEGER NOT NULL DEFAULT 0,     -- bit set, see store.api.Flag
    keywords      TEXT NOT NULL DEFAULT '',        -- ' kw1 kw2 ' (sorted, space-delimited) or ''
    size          INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    savedate      INTEGER NOT NULL, created_modseq INTEGER NOT NULL DEFAULT 0, sort_date INTEGER NOT NULL DEFAULT 0, sort_subject TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
INSERT INTO "messages" VALUES(1,1,1,8,0,'',77,1795938288,1795938288,8,1795938288,'one');
INSERT INTO "messages" VALUES(1,2,2,9,1,' $Work ',330,1795938288,1795938288,9,1795938288,'zwölf');
INSERT INTO "messages" VALUES(14,1,1,13,0,'',77,1795938288,1795938288,13,1795938288,'one');
INSERT INTO "messages" VALUES(14,2,2,13,1,' $Work ',330,1795938288,1795938288,13,1795938288,'zwölf');
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO "meta" VALUES('uidvalidity','1795938301');
CREATE TABLE metadata (
    user_id    INTEGER NOT NULL,
    mailbox_id INTEGER NOT NULL,            -- 0: a server entry
    name       TEXT NOT NULL,               -- lower case, e.g. /private/comment
    value      BLOB NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, name)
) WITHOUT ROWID;
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
CREATE TABLE sieve_scripts (
    user_id  INTEGER NOT NULL,
    name     TEXT NOT NULL,                 -- RFC 5804 §1.6: case-sensitive, UTF-8
    content  TEXT NOT NULL,
    active   INTEGER NOT NULL DEFAULT 0,    -- at most one per user
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;
CREATE TABLE sieve_vacation (
    user_id  INTEGER NOT NULL,
    handle   TEXT NOT NULL,                 -- the :handle, or a digest of the reply's text
    sender   TEXT NOT NULL,                 -- lower-cased envelope sender replied to
    sent_at  INTEGER NOT NULL,              -- UTC seconds of the last reply
    PRIMARY KEY (user_id, handle, sender)
) WITHOUT ROWID;
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
INSERT INTO "users" VALUES(1,'alice@example.test',1,'$argon2id$v=19$m=19456,t=2,p=1$WkoqyMbDGqLB0DeLwduslw$s2h9eSqdFxSjzGYXBncTKTh3cNqZ6r1yCYVOCOd72uY',X'6BD15F009D5124C74D406D151A66B856',4096,X'D230553DB69C9AEA6DBC198F1FC82A971CA4E5EB43C1218A881F083929077895',X'67403DCC89FAF55B93BBA6EE24963CDDC1B2BC8A7B742299F96070C276DB57F5',NULL,0,0,15,0,1795938288);
INSERT INTO "users" VALUES(2,'bob@example.test',1,'$argon2id$v=19$m=19456,t=2,p=1$RC0Sea+sX69JIQx5KEat+A$But1y6KsjlK2EY8Rn0hiVIDMkP6NzK8CGeZoL71zuy8',X'BBDB6CD480070509D6A793B945A107A7',4096,X'B6CF05F5AFA37D7B4406BDF9A089272A2169C67478865494A04E347868C985C8',X'7F2AA93C69CD6E29C53D055AC80BF9EAE79FFAFC5DA564F8C53A970892A42D11',NULL,10000000,0,7,0,1795938288);
CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    secret TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires REAL NOT NULL,
    client_ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE (flags & 1) = 0;
CREATE INDEX messages_content ON messages (content_id);
CREATE INDEX queue_recipients_queue ON queue_recipients (queue_id);
CREATE INDEX queue_recipients_due ON queue_recipients (next_attempt) WHERE state IN ('queued', 'deferred');
CREATE INDEX contents_unindexed ON contents (id) WHERE indexed = 0;
CREATE UNIQUE INDEX sieve_scripts_active ON sieve_scripts (user_id) WHERE active = 1;
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
CREATE INDEX messages_sort_date ON messages (mailbox_id, sort_date, uid);
CREATE INDEX messages_sort_subject ON messages (mailbox_id, sort_subject, uid);
CREATE INDEX contents_thread ON contents (thread_id) WHERE thread_id IS NOT NULL;
CREATE INDEX message_events_content ON message_events (user_id, content_id);
CREATE INDEX message_events_time ON message_events (time);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX email_submissions_changed ON email_submissions (user_id, changed);
CREATE INDEX messages_received ON messages (mailbox_id, internal_date, content_id);
PRAGMA writable_schema=OFF;
COMMIT;
