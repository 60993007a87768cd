"""Failed-authentication limits per client address, shared by every protocol in the process.

Each failure within ``window`` seconds slows the next attempt from that address by one more
second (up to ``max_delay``); after ``max_failures`` the address is refused for ``lockout``
seconds. A success clears the address's record. Loopback is limited like any other address:
tests that need many failures use their own limiter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
