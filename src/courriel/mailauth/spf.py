"""SPF (RFC 7208) with pyspf, resolving through our :class:`~courriel.queue.dns.Dns`.

pyspf looks names up through its module-level ``DNSLookup`` function; :func:`use_dns`
points it at the configured resolvers once per process (tests run their own DNS server).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.resolver
import spf

from courriel.queue.dns import Dns

_lock = threading.Lock()
_installed: Dns | None = None


def use_dns(resolver: Dns) -> None:
    """Make pyspf resolve through ``resolver`` (process-wide; the last call wins)."""
    global _installed
    with _lock:
        _installed = resolver

        def lookup(name: str, qtype: str, strict: bool = True, timeout: int = 20) -> list[tuple[Any, Any]]:
            out: list[tuple[Any, Any]] = []
            try:
                answer = resolver.sync.resolve(name, qtype, search=False, lifetime=min(timeout, 10))
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                return out
            except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
                raise spf.TempError(f"DNS {exc}") from None
            for r in answer:
                if qtype in ("A", "AAAA"):
                    out.append(((name, qtype), r.address))
                elif qtype == "MX":
                    out.append(((name, qtype), (r.preference, r.exchange)))
                elif qtype == "PTR":
                    out.append(((name, qtype), r.target.to_text(True)))
                elif qtype in ("TXT", "SPF"):
                    out.append(((name, qtype), r.strings))
                elif qtype == "CNAME":
                    out.append(((name, qtype), r.target.to_text(True)))
            return out

        spf.DNSLookup = lookup


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # pass, fail, softfail, neutral, none, temperror, permerror (RFC 7208 §2.6)
    domain: str  # the domain checked: of MAIL FROM, or of HELO for the null sender
    identity: str  # "mailfrom" or "helo"
    explanation: str


def check(ip: str, mail_from: str, helo: str) -> SpfResult:
    """Evaluate SPF for the MAIL FROM identity (the HELO one for the null sender, §2.4).

    Blocking: run it in a thread."""
    if mail_from:
        identity, sender = "mailfrom", mail_from
    else:
        identity, sender = "helo", f"postmaster@{helo}"
    domain = sender.rpartition("@")[2].lower()
    try:
        result, _code, explanation = spf.query(i=ip, s=sender, h=helo, querytime=20).check()
    except Exception as exc:  # pyspf raises on malformed input
        return SpfResult("permerror", domain, identity, str(exc))
    return SpfResult(str(result).lower(), domain, identity, str(explanation))
