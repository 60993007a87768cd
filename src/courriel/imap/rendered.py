"""ENVELOPE and BODYSTRUCTURE as IMAP bytes, rendered once per message content.

The store keeps both as compact JSON computed at delivery; turning that into IMAP syntax
is most of the cost of FETCH ENVELOPE. Message contents never change, so the rendered bytes
are cached per content id (shared by copies) in a bounded LRU for the whole process.

THREADID (RFC 8474 §5.2) is derived from the thread's root Message-ID: the first entry of
References, else In-Reply-To, else the message's own Message-ID, hashed to a short object
id, so every message of a thread that references its root gets the same id.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from courriel.imap.protocol import encoder
from courriel.mime.structure import body_from_json, envelope_from_json
from courriel.store.api import MessageRecord

MAX_ENTRIES = 50_000


class _Lru:
    __slots__ = ("data", "size")

    def __init__(self, size: int) -> None:
        self.data: OrderedDict[int, bytes] = OrderedDict()
        self.size = size

    def get(self, key: int) -> bytes | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: int, value: bytes) -> None:
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)


_ENVELOPES = _Lru(MAX_ENTRIES)
_STRUCTURES = _Lru(MAX_ENTRIES)


def rendered_envelope(rec: MessageRecord) -> bytes:
    key = rec.info.content_id
    value = _ENVELOPES.get(key)
    if value is None:
        value = encoder.envelope(envelope_from_json(rec.envelope_json))
        _ENVELOPES.put(key, value)
    return value


def rendered_bodystructure(rec: MessageRecord) -> bytes:
    key = rec.info.content_id
    value = _STRUCTURES.get(key)
    if value is None:
        value = encoder.body(body_from_json(rec.body_json), extensible=True)
        _STRUCTURES.put(key, value)
    return value


def thread_root(rec: MessageRecord) -> str | None:
    for field in (rec.references, rec.in_reply_to, rec.message_id):
        if field:
            first = field.split()[0]
            if first:
                return first
    return None


def thread_id(rec: MessageRecord) -> bytes:
    root = thread_root(rec)
    if root is None:
        return b"TC%d" % rec.info.content_id  # a thread of its own
    return b"T" + hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:20].encode()
