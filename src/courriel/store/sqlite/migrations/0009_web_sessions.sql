-- courriel schema version 9: webmail sessions (they survive a restart and are shared by
-- the nodes of one store).
--
-- The cookie's token is never stored: token_hash is its SHA-256. secret is the session's
-- CSRF secret (the CSRF token and the message frame's capability key derive from it).
-- Times are Unix seconds: a session ends at expires (its absolute maximum lifetime), or
-- when last_seen is older than [http] webmail_session_timeout (last_seen is written in
-- batches, not on every request), at logout, on a password change and with the user.
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
CREATE INDEX web_sessions_user ON web_sessions (user_id);
