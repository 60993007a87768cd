"""courriel.client: ``courriel mail``, a mail client (MUA) for any standard server.

Modules:
- ``accounts``: the account file (TOML, mode 0600), passwords from an environment
  variable, a command or a prompt; ``autoconfig``: servers from the address (RFC 6186).
- ``errors``: ``ClientError`` and the one place library exceptions become one-line messages.
- ``transport``: TLS contexts and connections (SMTP, IMAP, POP3) in STARTTLS or implicit TLS.
- ``smtp``, ``imap``, ``pop3``: submission, mailbox operations, download.
- ``compose``/``editor``: new messages, replies and forwards; ``$EDITOR`` templates.
- ``fetch``: POP3 (UIDL) and IMAP (UIDVALIDITY/UID) download into a local Maildir.
- ``render``: rich output (tables, messages, progress); ``cli``/``commands``: the commands.

Invariants: a password is never printed or logged; every failure reaches the user as one
line (``courriel mail: ...``) and a non-zero exit status.
"""
