-- courriel schema version 2: \Recent for IMAP4rev1 (RFC 3501 §2.3.2).
-- Messages with uid >= recent_uid have not yet been seen by any session that selected the
-- mailbox read-write; the first such session claims them (Store.claim_recent).
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 1;
