"""Failed-authentication limits per client address, shared by every protocol in the process.

Each failure within ``window`` seconds slows the next attempt from that address by one more
second (up to ``max_delay``); after ``max_failures`` the address is refused for ``lockout``
seconds. A success clears the address's record. Loopback is limited like any other address:
tests that need many failures use their own limiter.

Checks from one address run one at a time (:meth:`AuthLimiter.turn`): without that, a burst of
simultaneous guesses would all be checked before the first failure is known (one guess per
connection the address may open). Simultaneous *correct* logins from one address (a client
opening several connections, users behind one NAT) only queue for a moment: a verified
password is cached (``auth.passwords.VerifiedCache``). The turn covers the check and its
verdict, never a wait for the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0


class AuthLimiter:
    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        lockout: float = 900.0,
        max_delay: float = 5.0,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_delay = max_delay
        self._now = time.monotonic
        self._records: dict[str, _Record] = {}
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}  # per address: lock, users

    def _record(self, ip: str) -> _Record:
        now = self._now()
        rec = self._records.get(ip)
        if rec is None:
            rec = self._records[ip] = _Record()
        rec.failures = [t for t in rec.failures if now - t < self.window]
        if len(self._records) > 100_000:  # bound memory under a distributed attack
            self._expire(now)
        return rec

    def _expire(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if r.locked_until < now and not r.failures]:
            del self._records[key]
        if len(self._records) > 100_000:
            self._records.clear()

    def refused(self, ip: str) -> bool:
        """True while the address is locked out: answer with a temporary failure, no check."""
        return self._record(ip).locked_until > self._now()

    def delay(self, ip: str) -> float:
        """Seconds to wait before answering this address's next authentication attempt."""
        return min(float(len(self._record(ip).failures)), self.max_delay)

    def failure(self, ip: str) -> None:
        rec = self._record(ip)
        now = self._now()
        rec.failures.append(now)
        if len(rec.failures) >= self.max_failures:
            rec.locked_until = now + self.lockout
            rec.failures.clear()

    def success(self, ip: str) -> None:
        self._records.pop(ip, None)

    @contextlib.asynccontextmanager
    async def turn(self, ip: str) -> AsyncIterator[None]:
        """Hold the address's turn: check :meth:`refused`, the credentials, and record the
        verdict inside it, so that a concurrent attempt from the address sees this one's."""
        lock, users = self._turns.get(ip) or (asyncio.Lock(), 0)
        self._turns[ip] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[ip]
            if users <= 1:
                del self._turns[ip]
            else:
                self._turns[ip] = (lock, users - 1)

    async def checked(self, ip: str, check: Callable[[], Awaitable[T]], refusal: Callable[[], BaseException]) -> T:
        """Run one credential check (a password, a SASL step) in the address's turn; raise
        ``refusal()`` instead when the address is locked out by the time its turn comes.

        The caller records the verdict (:meth:`failure`/:meth:`success`) right after, with no
        ``await`` in between, so the next check of the address sees it."""
        async with self.turn(ip):
            if self.refused(ip):
                raise refusal()
            return await check()
