"""IMAP command handlers and the one dispatch table (command -> handler, allowed states)."""

from __future__ import annotations

from courriel.imap.commands import auth, fetch, listing, mailboxes, messages, search
from courriel.imap.session import ANY, AUTHED, NOT_AUTH, SELECTED, Entry

TABLE: dict[str, Entry] = {
    # any state (RFC 9051 §6.1)
    "CAPABILITY": Entry(auth.capability, ANY),
    "NOOP": Entry(auth.noop, ANY),
    "LOGOUT": Entry(auth.logout, ANY),
    "ID": Entry(auth.id_, ANY),
    # not authenticated (§6.2)
    "STARTTLS": Entry(auth.starttls, NOT_AUTH),
    "AUTHENTICATE": Entry(auth.authenticate, NOT_AUTH),
    "LOGIN": Entry(auth.login, NOT_AUTH),
    # authenticated (§6.3)
    "ENABLE": Entry(auth.enable, AUTHED),
    "SELECT": Entry(mailboxes.select, AUTHED),
    "EXAMINE": Entry(mailboxes.examine, AUTHED),
    "CREATE": Entry(mailboxes.create, AUTHED),
    "DELETE": Entry(mailboxes.delete, AUTHED),
    "RENAME": Entry(mailboxes.rename, AUTHED),
    "SUBSCRIBE": Entry(mailboxes.subscribe, AUTHED),
    "UNSUBSCRIBE": Entry(mailboxes.unsubscribe, AUTHED),
    "LIST": Entry(listing.list_, AUTHED),
    "LSUB": Entry(listing.list_, AUTHED),
    "NAMESPACE": Entry(mailboxes.namespace, AUTHED),
    "STATUS": Entry(mailboxes.status, AUTHED),
    "APPEND": Entry(messages.append, AUTHED),
    "IDLE": Entry(messages.idle, AUTHED),
    # selected (§6.4)
    "CHECK": Entry(mailboxes.check, SELECTED),
    "CLOSE": Entry(mailboxes.close, SELECTED),
    "UNSELECT": Entry(mailboxes.unselect, SELECTED),
    "EXPUNGE": Entry(mailboxes.expunge, SELECTED),
    "SEARCH": Entry(search.search, SELECTED, expunge_ok=False),
    "FETCH": Entry(fetch.fetch, SELECTED, expunge_ok=False),
    "STORE": Entry(messages.store, SELECTED, expunge_ok=False),
    "COPY": Entry(messages.copy, SELECTED),
    "MOVE": Entry(messages.copy, SELECTED),
    "UID SEARCH": Entry(search.search, SELECTED),
    "UID FETCH": Entry(fetch.fetch, SELECTED),
    "UID STORE": Entry(messages.store, SELECTED),
    "UID COPY": Entry(messages.copy, SELECTED),
    "UID MOVE": Entry(messages.copy, SELECTED),
    "UID EXPUNGE": Entry(mailboxes.expunge, SELECTED),
}
