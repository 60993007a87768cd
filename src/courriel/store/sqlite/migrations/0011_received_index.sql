-- courriel schema version 11: the newest messages of a mailbox by internal date.
--
-- JMAP's first Email/query of a mailbox after a start (sorted by receivedAt, before the
-- account view is read) walks this index from its end and stops after the page
-- (Store.received_page), instead of reading every row of the mailbox.
CREATE INDEX messages_received ON messages (mailbox_id, internal_date, content_id);
