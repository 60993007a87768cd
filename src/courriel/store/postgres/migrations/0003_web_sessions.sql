-- Webmail sessions (shared by every node of the store): see the SQLite migration 0009.
CREATE TABLE web_sessions (
    id bigserial PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    user_id bigint NOT NULL,
    secret text NOT NULL,
    created double precision NOT NULL,
    last_seen double precision NOT NULL,
    expires double precision NOT NULL,
    client_ip text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
