"""EventSource push (RFC 8620 §7.3): StateChange objects from the store's change feed.

``GET /jmap/eventsource?types=Email,Mailbox&closeafter=state|no&ping=N``. Every committed
store change for the user becomes, at once, a ``state`` event naming the types whose state
moved (a message added, changed or expunged moves Email, Thread and Mailbox, whose counts
change; a new message also moves EmailDelivery, RFC 8621 §1.5). ``ping`` (seconds, raised to
at least :data:`MIN_PING`) sends ``ping`` events so proxies keep the stream open.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from courriel.store.changes import Change, FeedGap, FlagsChanged, MessageAdded, MessagesExpunged

TYPES = frozenset({"Email", "Mailbox", "Thread", "EmailDelivery", "*"})
MIN_PING, MAX_PING = 5, 3600
_QUEUE_MAX = 1000

#: Open streams per user (bounded by ``[jmap] max_event_streams``).
STREAMS: Counter[int] = Counter()


@dataclass(frozen=True, slots=True)
class PushParams:
    types: frozenset[str]
    close_after_state: bool
    ping: int


def parse_params(types: str | None, closeafter: str | None, ping: str | None) -> PushParams:
    """The query of an EventSource URL (§7.3); ValueError when malformed."""
    wanted = frozenset(t.strip() for t in (types or "*").split(",") if t.strip())
    if not wanted or not wanted <= TYPES:
        raise ValueError("types: a comma-separated list of Email, Mailbox, Thread, EmailDelivery, or *")
    if closeafter not in (None, "state", "no"):
        raise ValueError("closeafter: state or no")
    if ping is None or ping == "":
        interval = 0
    elif ping.isdigit() and len(ping) < 8:
        interval = int(ping)
        interval = 0 if interval == 0 else min(max(interval, MIN_PING), MAX_PING)
    else:
        raise ValueError("ping: a number of seconds")
    return PushParams(wanted, closeafter == "state", interval)


def changed_types(changes: Sequence[Change]) -> dict[str, int]:
    """Type name -> new state (the highest MODSEQ) for a batch of store changes."""
    out: dict[str, int] = {}
    for ch in changes:
        names = ["Mailbox"]
        # FeedGap: changes were lost, anything may have moved (its MODSEQ is the user's now)
        if isinstance(ch, (MessageAdded, FlagsChanged, MessagesExpunged, FeedGap)):
            names += ["Email", "Thread"]
        if isinstance(ch, (MessageAdded, FeedGap)):
            names.append("EmailDelivery")
        for name in names:
            out[name] = max(out.get(name, 0), ch.modseq)
    return out


def state_event(account_id: str, changed: dict[str, int], wanted: frozenset[str]) -> bytes | None:
    picked = {k: str(v) for k, v in sorted(changed.items()) if "*" in wanted or k in wanted}
    if not picked:
        return None
    body = {"@type": "StateChange", "changed": {account_id: picked}}
    return b"event: state\ndata: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


async def stream(subscribe: object, account_id: str, params: PushParams) -> AsyncIterator[bytes]:
    """Events for one connection. ``subscribe(callback)`` registers with the change hub and
    returns an object with ``close()``."""
    queue: asyncio.Queue[Sequence[Change]] = asyncio.Queue(_QUEUE_MAX)

    def put(items: Sequence[Change]) -> None:
        try:
            queue.put_nowait(items)
        except asyncio.QueueFull:  # a stalled client: drop, the next change carries the state
            pass

    sub = subscribe(put)  # type: ignore[operator]
    try:
        yield b": courriel jmap push\n\n"  # a comment so the client sees the stream open
        while True:
            try:
                if params.ping:
                    batch = await asyncio.wait_for(queue.get(), params.ping)
                else:
                    batch = await queue.get()
            except TimeoutError:
                yield b"event: ping\ndata: " + json.dumps({"interval": params.ping}).encode() + b"\n\n"
                continue
            changed = changed_types(batch)
            while not queue.empty():  # coalesce what is already waiting
                for k, v in changed_types(queue.get_nowait()).items():
                    changed[k] = max(changed.get(k, 0), v)
            event = state_event(account_id, changed, params.types)
            if event is not None:
                yield event
                if params.close_after_state:
                    return
    finally:
        sub.close()
