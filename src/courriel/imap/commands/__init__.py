"""IMAP command handlers and the one dispatch table (command -> handler, allowed states)."""

from __future__ import annotations

from courriel.imap.commands import auth, extras, fetch, listing, mailboxes, messages, search, sort
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
    "COMPRESS": Entry(extras.compress, AUTHED),  # RFC 4978 §3: after authentication
    "GETQUOTA": Entry(extras.getquota, AUTHED),
    "GETQUOTAROOT": Entry(extras.getquotaroot, AUTHED),
    "SETQUOTA": Entry(extras.setquota, AUTHED),
    "GETMETADATA": Entry(extras.getmetadata, AUTHED),
    "SETMETADATA": Entry(extras.setmetadata, AUTHED),
    "NOTIFY": Entry(extras.notify, AUTHED),
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
    "SORT": Entry(sort.sort, SELECTED, expunge_ok=False),
    "THREAD": Entry(sort.thread, SELECTED, expunge_ok=False),
    "UID SEARCH": Entry(search.search, SELECTED),
    "UID SORT": Entry(sort.sort, SELECTED),
    "UID THREAD": Entry(sort.thread, SELECTED),
    "UID FETCH": Entry(fetch.fetch, SELECTED),
    "UID STORE": Entry(messages.store, SELECTED),
    "UID COPY": Entry(messages.copy, SELECTED),
    "UID MOVE": Entry(messages.copy, SELECTED),
    "UID EXPUNGE": Entry(mailboxes.expunge, SELECTED),
}
