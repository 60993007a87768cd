"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034), APOP and the
response codes of RFC 2449 and RFC 3206.

- :mod:`.protocol`: the pure part: command parser (bytes in, :class:`~.protocol.Command`
  out), response encoders, dot-stuffing, TOP, UIDL and APOP helpers. No I/O.
- :mod:`.maildrop`: the session's fixed view of INBOX (message numbers, sizes, deletion
  marks), the exclusive lock of RFC 1939 §8, and the commit of the UPDATE state.
- :mod:`.session`: one connection; one dispatch table per state (AUTHORIZATION,
  TRANSACTION), errors turned into ``-ERR`` replies in one place.
- :mod:`.server`: the ``pop3`` (STLS) and ``pop3s`` (implicit TLS) services.

Invariants: the maildrop a session sees is fixed when it enters TRANSACTION (RFC 1939 §5);
deletions happen only in the UPDATE state after QUIT, in one store operation, and a dropped
connection removes nothing; one POP3 session at a time holds a user's INBOX.
"""
