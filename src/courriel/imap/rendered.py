"""ENVELOPE and BODYSTRUCTURE as IMAP bytes, rendered once per message content.

The store keeps both as compact JSON computed at delivery; turning that into IMAP syntax
is most of the cost of FETCH ENVELOPE. Message contents never change, so the rendered bytes
are cached per content id (shared by copies) in a bounded LRU for the whole process.

THREADID (RFC 8474 §5.2) is derived from the thread's root Message-ID (see
:func:`courriel.store.content.thread_key`), which the store also keeps indexed for SEARCH.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from courriel.imap.protocol import encoder
from courriel.mime.structure import body_from_json, envelope_from_json
from courriel.store.api import MessageRecord
from courriel.store.content import thread_id as content_thread_id
from courriel.store.content import thread_key

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


def cached_envelopes(content_ids: Iterable[int]) -> list[bytes | None]:
    """Bulk lookup (a large FETCH): no recency update, a C-level map."""
    return list(map(_ENVELOPES.data.get, content_ids))


def cached_bodystructures(content_ids: Iterable[int]) -> list[bytes | None]:
    return list(map(_STRUCTURES.data.get, content_ids))


def cached_envelope(content_id: int) -> bytes | None:
    return _ENVELOPES.get(content_id)


def cached_bodystructure(content_id: int) -> bytes | None:
    return _STRUCTURES.get(content_id)


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


def thread_id(rec: MessageRecord) -> bytes:
    """RFC 8474 §5.2 THREADID, as the store indexes it (:func:`courriel.store.content.thread_id`)."""
    key = thread_key(rec.references, rec.in_reply_to, rec.message_id)
    return content_thread_id(key, rec.info.content_id).encode("ascii")
