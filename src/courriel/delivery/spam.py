"""Optional spam filtering through rspamd's HTTP API (``[spam]``, off by default).

- :meth:`SpamFilter.check` posts an incoming message (MX only, never authenticated
  submission) to ``/checkv2`` with its envelope; the verdict becomes ``X-Spam-*`` header
  fields, a refusal (554 5.7.1) at ``reject_score`` or rspamd's "reject" action, or Junk
  at ``junk_score`` or rspamd's "add header"/"rewrite subject" actions. When rspamd is
  unreachable or slow, the message passes unfiltered (logged): filtering never loses mail.
- :class:`SpamLearner` follows the store's change feed: a message a user *moves* into Junk
  (RFC 6851 MOVE, or any single operation that adds to Junk and expunges elsewhere) is
  learned as spam (``/learnspam``); one moved out of Junk into another mailbox than Trash,
  as ham (``/learnham``). The learner runs as a background service (``spam``).

The HTTP client is a small HTTP/1.1 one (one request per connection, ``Content-Length``
bodies), enough for rspamd on loopback; no extra dependency.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from courriel.config import SpamSection
from courriel.store.api import Store, StoreError
from courriel.store.changes import Change, MessageAdded, MessagesExpunged, Subscription

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.spam")

#: Largest HTTP response read from rspamd.
MAX_RESPONSE = 1024 * 1024
#: Learning requests waiting at most (beyond: dropped, logged).
MAX_PENDING_LEARN = 200


class SpamError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    required: float
    action: str
    junk: bool
    reject: bool
    symbols: tuple[str, ...]

    def header(self) -> bytes:
        """``X-Spam`` (Yes/No), ``X-Spam-Score`` and ``X-Spam-Status`` to prepend."""
        flag = "Yes" if self.junk or self.reject else "No"
        symbols = ", ".join(self.symbols[:50])
        status = f"{flag}, score={self.score:.2f} required={self.required:.2f} action={self.action}"
        lines = [f"X-Spam: {flag}", f"X-Spam-Score: {self.score:.2f}", f"X-Spam-Status: {status}"]
        if symbols:
            lines.append(f"X-Spam-Symbols: {_clean(symbols)}")
        return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def _clean(text: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in text)[:900]


async def http_post(url: str, path: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``body`` to ``url`` + ``path``; returns (status, response body)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=parts.scheme == "https" or None)
        try:
            head = [f"POST {parts.path.rstrip('/')}{path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
                    f"Content-Length: {len(body)}"]  # fmt: skip
            head += [f"{k}: {_clean(v)}" for k, v in headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body)
            await writer.drain()
            status_line = await reader.readline()
            fields: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                fields[name.strip().lower()] = value.strip()
            if "content-length" in fields:
                size = int(fields["content-length"])
                if size > MAX_RESPONSE:
                    raise SpamError("response too large")
                data = await reader.readexactly(size)
            else:
                data = await reader.read(MAX_RESPONSE)
        finally:
            writer.close()
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise SpamError(f"bad HTTP status line {status_line[:80]!r}") from None
    return status, data


class SpamFilter:
    def __init__(self, cfg: SpamSection) -> None:
        self.cfg = cfg

    def verdict(self, result: dict[str, Any]) -> Verdict:
        score = float(result.get("score", 0.0))
        required = float(result.get("required_score", self.cfg.junk_score))
        action = str(result.get("action", "no action"))
        cfg = self.cfg
        reject = cfg.reject_score > 0 and (action == "reject" or score >= cfg.reject_score)
        junk = not reject and (action in ("add header", "rewrite subject") or score >= cfg.junk_score)
        symbols = tuple(sorted(result.get("symbols", {}) or {}))
        return Verdict(score, required, action, junk, reject, symbols)

    async def check(
        self,
        message: bytes,
        *,
        mail_from: str,
        rcpts: Sequence[str],
        ip: str,
        helo: str,
        hostname: str,
        queue_id: str,
    ) -> Verdict | None:
        """The verdict, or None when the message passes unchecked (too large, rspamd down)."""
        if len(message) > self.cfg.max_size:
            return None
        headers = {"IP": ip, "Helo": helo, "From": mail_from, "Hostname": hostname, "Queue-Id": queue_id}
        # rspamd takes one Rcpt header per recipient; the first one is what we can send here.
        if rcpts:
            headers["Rcpt"] = rcpts[0]
        try:
            status, body = await http_post(self.cfg.url, "/checkv2", message, headers, self.cfg.timeout)
            if status != 200:
                raise SpamError(f"HTTP {status}: {body[:200]!r}")
            result = json.loads(body)
            if not isinstance(result, dict):
                raise SpamError("unexpected response")
        except (OSError, TimeoutError, SpamError, ValueError, asyncio.IncompleteReadError) as exc:
            log.warning("spam: check failed, message passes unfiltered: %s", exc)
            return None
        verdict = self.verdict(result)
        log.info("spam: id=%s score=%.2f action=%s junk=%s reject=%s", queue_id, verdict.score,
                 verdict.action, verdict.junk, verdict.reject)  # fmt: skip
        return verdict

    async def learn(self, message: bytes, spam: bool) -> bool:
        """Teach rspamd's Bayes classifier; False when it refused or could not be reached."""
        path = "/learnspam" if spam else "/learnham"
        headers = {"Password": self.cfg.password} if self.cfg.password else {}
        try:
            status, body = await http_post(self.cfg.controller_url, path, message, headers, self.cfg.timeout)
        except (OSError, TimeoutError, SpamError, asyncio.IncompleteReadError) as exc:
            log.warning("spam: %s failed: %s", path, exc)
            return False
        if status == 200:
            log.info("spam: learned a message as %s", "spam" if spam else "ham")
            return True
        # 208: already learned as this class (not an error).
        log.info("spam: %s answered %d: %s", path, status, body[:200].decode("utf-8", "replace"))
        return status == 208


def _is_junk(name: str, special_use: str | None) -> bool:
    return special_use == "\\Junk" or name.lower() == "junk"


def _is_trash(name: str, special_use: str | None) -> bool:
    return special_use == "\\Trash" or name.lower() == "trash"


class SpamLearner:
    """Learns from users' moves into and out of Junk (the change feed, all users)."""

    name = "spam"

    def __init__(self, store: Store, spam: SpamFilter) -> None:
        self.store = store
        self.filter = spam
        self.subscription: Subscription | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.limit = asyncio.Semaphore(2)

    async def start(self) -> list[tuple[str, int]]:
        if self.filter.cfg.learn:
            self.subscription = self.store.changes.subscribe(None, self.on_changes)
        return []

    async def stop(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)

    def on_changes(self, changes: Sequence[Change]) -> None:
        # One operation's changes share a user and a MODSEQ: a MOVE is an add and an expunge.
        ops: dict[tuple[int, int], list[Change]] = defaultdict(list)
        for change in changes:
            if isinstance(change, (MessageAdded, MessagesExpunged)):
                ops[(change.user_id, change.modseq)].append(change)
        for op in ops.values():
            added = [c for c in op if isinstance(c, MessageAdded)]
            expunged = [c for c in op if isinstance(c, MessagesExpunged)]
            if not added or not expunged:
                continue
            if len(self.tasks) >= MAX_PENDING_LEARN:
                log.warning("spam: too many messages waiting to be learned; one move is not learned")
                continue
            task = asyncio.get_running_loop().create_task(self._learn(added, expunged))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _learn(self, added: list[MessageAdded], expunged: list[MessagesExpunged]) -> None:
        async with self.limit:
            try:
                src = await self.store.get_mailbox_by_id(expunged[0].mailbox_id)
                dst = await self.store.get_mailbox_by_id(added[0].mailbox_id)
                if src is None or dst is None:
                    return
                if _is_junk(dst.name, dst.special_use) and not _is_junk(src.name, src.special_use):
                    spam = True
                elif _is_junk(src.name, src.special_use) and not (
                    _is_junk(dst.name, dst.special_use) or _is_trash(dst.name, dst.special_use)
                ):
                    spam = False
                else:
                    return
                records = await self.store.get_records(dst.id, [c.uid for c in added])
                for rec in records:
                    await self.filter.learn(await self.store.read_message(rec.blob), spam)
            except (StoreError, OSError) as exc:
                log.warning("spam: learning failed: %s", exc)


def spam_service(ctx: Context) -> SpamLearner:
    """The background learner (started by ``serve`` when ``[spam] enabled`` and ``learn``)."""
    return SpamLearner(ctx.store, SpamFilter(ctx.cfg.spam))
