-- Message events (the journey of any stored message): see the SQLite migration 0008.
CREATE TABLE message_events (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL,
    content_id bigint NOT NULL,
    time double precision NOT NULL,
    kind text NOT NULL,
    protocol text NOT NULL DEFAULT '',
    client text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX message_events_content ON message_events (user_id, content_id);
CREATE INDEX message_events_time ON message_events (time);
