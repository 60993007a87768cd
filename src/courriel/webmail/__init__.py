"""The webmail: server-rendered pages (Jinja2) and one small script of our own.

- ``app``: the http part (routes under ``/``, ``/login``, ``/mail/...``, ``/static/...``) and
  the security headers of every response.
- ``common``: sessions checked, CSRF, typed errors turned into responses in one place.
- ``sessions``: sessions kept in the store (a cache here), capabilities for the message frame.
- ``retrievals``: messages opened or downloaded, as "retrieved" message events (the journey).
- ``login``, ``listing`` (folders, pages of the list, search), ``reader`` (a message, its
  sandboxed body, its parts), ``compose`` (write, reply, forward, drafts, send), ``actions``
  (flags, move, delete), ``live`` (Server-Sent Events from the store's change feed).
- ``sanitize``: pure functions turning bodies into safe HTML.

Everything goes through :class:`courriel.store.api.Store`; sending through
:func:`courriel.delivery.submit.submit`.
"""
