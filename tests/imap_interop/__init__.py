"""The IMAP server driven by clients we did not write (RFC 9051/3501 behaviour, not ours).

- test_tls_auth, test_session: imaplib: CAPABILITY, STARTTLS, IMAPS, LOGIN, AUTHENTICATE
  (PLAIN, SCRAM-SHA-256, SASL-IR), ID, ENABLE, NOOP, LOGOUT;
- test_mailboxes, test_messages, test_search, test_fetch: imaplib (and imapclient's parser)
  for every mailbox and message command, checked against values computed independently
  from the bytes we put in (messages.py);
- test_imapclient: IMAPClient's API over STARTTLS; test_concurrent: aioimaplib in IDLE and
  two imaplib sessions seeing each other's changes;
- test_mbsync, test_offlineimap: a 5,000-message account synchronised both ways
  (syncscenario.py); test_mutt: mutt reading, flagging, moving and deleting.

``IMAP_INTEROP_PEER=dovecot pytest tests/imap_interop`` runs the same suite against a
private Dovecot, to check the suite itself (peers.py).
"""
