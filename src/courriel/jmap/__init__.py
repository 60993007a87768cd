"""JMAP (RFC 8620 core, RFC 8621 mail) on the ``http`` listener.

- :mod:`.core`: the request envelope, its pure validator, result references, errors, dispatch
- :mod:`.index`: one user's account as JMAP sees it (Emails = store contents, Threads), state
- :mod:`.mailbox`, :mod:`.email`, :mod:`.emailset`, :mod:`.query`, :mod:`.thread`,
  :mod:`.submission`: the methods; :mod:`.blob` uploads/downloads; :mod:`.push` EventSource
- :mod:`.auth`: Basic (through :mod:`courriel.web.auth`) and bearer tokens; :mod:`.http` routes

Ids: an Email is a store content (``M<content id>``, RFC 8474 EMAILID, shared with IMAP); a
Thread is IMAP's THREADID; a Mailbox is ``<mailbox id>`` prefixed ``B``. Every state string
is the user's MODSEQ counter, which every store mutation bumps.
"""
