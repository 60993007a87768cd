-- The newest messages of a mailbox by internal date (Store.received_page): see the SQLite
-- migration 0011.
CREATE INDEX messages_received ON messages (mailbox_id, internal_date, content_id);
