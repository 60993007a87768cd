"""A small process-wide cache of message bytes with their parsed body structure, for
Email/get of body values (and the other properties read from the bytes).

Keyed by (user id, blob name): a blob file is immutable and its name is unique (a time
stamp and random bits, :mod:`courriel.store.blobs`), so a message expunged and another one
stored later can never be served from an old entry, even if the store reused the content
id; the user id keeps one account's entries out of every other account's reach (a lookup
needs the blob name, which comes from the caller's own store record). Bounded in total
bytes, least recently used first out; messages larger than ``max_item`` are not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from courriel.mime.structure import BodyPart, body_from_json


@dataclass(frozen=True, slots=True)
class Content:
    data: bytes
    body: BodyPart


class ContentCache:
    def __init__(self, max_bytes: int = 16 << 20, max_item: int = 1 << 20) -> None:
        self.max_bytes = max_bytes
        self.max_item = max_item
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[int, str], Content] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, user_id: int, blob: str) -> Content | None:
        found = self._items.get((user_id, blob))
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end((user_id, blob))
        return found

    def put(self, user_id: int, blob: str, data: bytes, body_json: str) -> Content:
        """The parsed content; kept when small enough."""
        content = Content(data, body_from_json(body_json))
        if len(data) > self.max_item:
            return content
        key = (user_id, blob)
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old.data)
        self._items[key] = content
        self.size += len(data)
        while self.size > self.max_bytes and self._items:
            _, gone = self._items.popitem(last=False)
            self.size -= len(gone.data)
        return content

    def drop_user(self, user_id: int) -> None:
        for key in [k for k in self._items if k[0] == user_id]:
            self.size -= len(self._items.pop(key).data)

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


#: The process-wide cache used by Email/get.
contents = ContentCache()
