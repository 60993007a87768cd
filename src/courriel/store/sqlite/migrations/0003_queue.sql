-- courriel schema version 3: the outbound queue.
-- One row per queued message (its bytes stored once, in a blob file like any message) and
-- one row per recipient with its own state, so a delivery attempt can succeed for some
-- recipients and be retried or bounced for others. The RFC 3461 DSN parameters (ENVID,
-- RET per message; NOTIFY, ORCPT per recipient) are kept for delivery status notifications.
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
CREATE INDEX queue_recipients_queue ON queue_recipients (queue_id);
CREATE INDEX queue_recipients_due ON queue_recipients (next_attempt) WHERE state IN ('queued', 'deferred');
