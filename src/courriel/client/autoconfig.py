"""Servers from an address alone: RFC 6186 SRV records, then the usual host names.

RFC 6186 §3: ``_submissions._tcp`` (RFC 8314 §5.1), ``_submission._tcp``, ``_imaps._tcp``,
``_imap._tcp``, ``_pop3s._tcp``, ``_pop3._tcp``; the lowest priority, then the highest
weight wins; a target of "." means the service is not offered (§4). Implicit TLS is
preferred over STARTTLS (RFC 8314 §5.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .accounts import Server

# (service, SRV label, TLS mode), in order of preference per service.
SRV_LABELS = (
    ("smtp", "_submissions._tcp", "tls"),
    ("smtp", "_submission._tcp", "starttls"),
    ("imap", "_imaps._tcp", "tls"),
    ("imap", "_imap._tcp", "starttls"),
    ("pop3", "_pop3s._tcp", "tls"),
    ("pop3", "_pop3._tcp", "starttls"),
)
# When there are no SRV records: the names most providers use.
GUESSES = {
    "smtp": (("smtp", 587, "starttls"), ("mail", 587, "starttls")),
    "imap": (("imap", 993, "tls"), ("mail", 993, "tls")),
    "pop3": (("pop", 995, "tls"), ("pop3", 995, "tls"), ("mail", 995, "tls")),
}

# (priority, weight, port, target) records for a name; [] when there are none.
SrvLookup = Callable[[str], Sequence[tuple[int, int, int, str]]]
HostExists = Callable[[str], bool]


class DnsUnavailable(Exception):
    """No answer at all (timeout, no reachable name server): stop asking."""


def dns_srv(name: str) -> list[tuple[int, int, int, str]]:
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(name, "SRV", lifetime=5)
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise DnsUnavailable(str(exc)) from None
    except (dns.exception.DNSException, OSError):
        return []
    return [(r.priority, r.weight, r.port, r.target.to_text()) for r in answer]


def dns_host_exists(name: str) -> bool:
    import dns.exception
    import dns.resolver

    for rdtype in ("A", "AAAA"):
        try:
            dns.resolver.resolve(name, rdtype, lifetime=5)
            return True
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsUnavailable(str(exc)) from None
        except (dns.exception.DNSException, OSError):
            continue
    return False


def best_srv(records: Sequence[tuple[int, int, int, str]]) -> tuple[str, int] | None:
    """(host, port) of the preferred record; None when absent or "." (not offered)."""
    if not records:
        return None
    _prio, _weight, port, target = min(records, key=lambda r: (r[0], -r[1]))
    target = target.rstrip(".")
    if not target or port == 0:
        return None
    return target, port


def discover(domain: str, srv: SrvLookup = dns_srv, exists: HostExists = dns_host_exists) -> dict[str, Server]:
    """The servers found for ``domain`` per service ("smtp", "imap", "pop3"); what was
    found before DNS stopped answering when it does."""
    found: dict[str, Server] = {}
    try:
        _discover(domain, srv, exists, found)
    except DnsUnavailable:
        pass
    return found


def _discover(domain: str, srv: SrvLookup, exists: HostExists, found: dict[str, Server]) -> None:
    for service, label, tls in SRV_LABELS:
        if service in found:
            continue
        best = best_srv(srv(f"{label}.{domain}"))
        if best is not None:
            found[service] = Server(best[0], best[1], tls)
    for service, guesses in GUESSES.items():
        if service in found:
            continue
        for prefix, port, tls in guesses:
            host = f"{prefix}.{domain}"
            if exists(host):
                found[service] = Server(host, port, tls)
                break
