-- courriel schema version 7: IMAP at scale.
--
-- RFC 5256 SORT (DATE) and SORT (SUBJECT) keys copied into each message row (from its
-- content, which never changes) and indexed per mailbox, so sorting a mailbox reads one
-- index in order: no join with contents, no temporary B-tree.
ALTER TABLE messages ADD COLUMN sort_date INTEGER NOT NULL DEFAULT 0;  -- COALESCE(sent_date, internal_date)
ALTER TABLE messages ADD COLUMN sort_subject TEXT NOT NULL DEFAULT '';  -- contents.base_subject
UPDATE messages SET
    sort_date = COALESCE((SELECT c.sent_date FROM contents c WHERE c.id = messages.content_id), internal_date),
    sort_subject = COALESCE((SELECT c.base_subject FROM contents c WHERE c.id = messages.content_id), '');
CREATE INDEX messages_sort_date ON messages (mailbox_id, sort_date, uid);
CREATE INDEX messages_sort_subject ON messages (mailbox_id, sort_subject, uid);

-- RFC 8474 THREADID, indexed for SEARCH THREADID: the hashed root Message-ID of the
-- message's thread (courriel.store.content.thread_key; NULL: a thread of its own).
ALTER TABLE contents ADD COLUMN thread_id TEXT;
UPDATE contents SET thread_id = courriel_thread_key(refs_header, in_reply_to, message_id);
CREATE INDEX contents_thread ON contents (thread_id) WHERE thread_id IS NOT NULL;
