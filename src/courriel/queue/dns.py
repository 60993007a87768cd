"""DNS lookups for delivery and mail authentication, through the resolvers of ``outbound.dns``.

Tests and special set-ups point ``outbound.dns`` at their own server (``host:port``); empty
means the system's resolvers. Every answer is classified: a record set, nothing (NoAnswer /
NXDOMAIN, both permanent facts) or :class:`DnsTempError` (timeouts, SERVFAIL: try later).
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.resolver


class DnsTempError(Exception):
    """A lookup that may succeed later (timeout, SERVFAIL, no reachable server)."""


class NoSuchDomain(Exception):
    """NXDOMAIN: the name does not exist."""


def _configure(res: dns.resolver.BaseResolver, servers: str, timeout: float) -> None:
    entries = [s.strip() for s in servers.split(",") if s.strip()]
    if entries:
        res.nameservers = []
        for entry in entries:
            host, port = entry, 53
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                port = int(rest[1:]) if rest.startswith(":") else 53
            elif entry.count(":") == 1:
                host, _, p = entry.partition(":")
                port = int(p)
            res.nameservers.append(host)
            res.nameserver_ports[host] = port
    res.lifetime = timeout
    res.timeout = timeout
    res.cache = dns.resolver.Cache()


class Dns:
    """Asynchronous lookups for the queue, blocking ones for libraries run in threads."""

    def __init__(self, servers: str = "", timeout: float = 10.0) -> None:
        self.servers = servers
        self.resolver = dns.asyncresolver.Resolver(configure=not servers.strip())
        _configure(self.resolver, servers, timeout)
        self.sync = dns.resolver.Resolver(configure=not servers.strip())
        _configure(self.sync, servers, timeout)

    async def _query(self, name: str, rdtype: str) -> list[object]:
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise NoSuchDomain(name) from None
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTempError(f"{name}/{rdtype}: {exc}") from None
        return list(answer)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """MX records (preference, host without the final dot); empty when there are none."""
        return [
            (int(r.preference), r.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
            for r in await self._query(domain, "MX")
        ]

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host``."""
        out: list[str] = []
        missing = 0
        for rdtype in ("A", "AAAA"):
            try:
                out += [r.address for r in await self._query(host, rdtype)]  # type: ignore[attr-defined]
            except NoSuchDomain:
                missing += 1
        if missing == 2:
            raise NoSuchDomain(host)
        return out

    async def txt(self, name: str) -> list[bytes]:
        """TXT records, each with its strings joined."""
        try:
            records = await self._query(name, "TXT")
        except NoSuchDomain:
            return []
        return [b"".join(r.strings) for r in records]  # type: ignore[attr-defined]

    def txt_sync(self, name: str) -> list[bytes]:
        """Blocking TXT lookup (for dkimpy, run in a thread)."""
        try:
            answer = self.sync.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsTempError(f"{name}/TXT: {exc}") from None
        return [b"".join(r.strings) for r in answer]
