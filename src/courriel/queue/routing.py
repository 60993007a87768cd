"""Where mail for a domain goes: a configured relay, or the domain's MX hosts.

RFC 5321 §5.1: MX records in preference order (equal preferences in random order); no MX
record means the domain's own A/AAAA addresses (the implicit MX); RFC 7505 §3: a single
"." MX (the null MX) means the domain accepts no mail, a permanent failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from courriel.config import OutboundSection, parse_listen
from courriel.queue.dns import Dns, DnsTempError, NoSuchDomain


class RouteError(Exception):
    """No way to reach the domain now (``permanent`` False: try later) or ever."""

    def __init__(self, permanent: bool, status: str, text: str) -> None:
        super().__init__(f"{status} {text}")
        self.permanent = permanent
        self.status = status
        self.text = text


@dataclass(frozen=True, slots=True)
class Hop:
    host: str  # the name (TLS server name, Remote-MTA)
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    hops: tuple[Hop, ...]
    relay: bool  # a configured smarthost: TLS mode and AUTH from the configuration
    key: str  # destination key for connection reuse and limits


def relay_for(domain: str, cfg: OutboundSection) -> tuple[str, int] | None:
    for entry in cfg.routes:
        name, _, target = entry.partition("=")
        if name.strip().lower() == domain:
            return parse_listen(target)[0]
    if cfg.smarthost:
        return parse_listen(cfg.smarthost)[0]
    return None


async def _resolve_host(dns: Dns, host: str) -> tuple[str, ...]:
    if host.replace(".", "").isdigit() or ":" in host:
        return (host,)
    if host == "localhost":
        return ("127.0.0.1",)
    return tuple(await dns.addresses(host))


async def route(domain: str, cfg: OutboundSection, dns: Dns) -> Route:
    domain = domain.lower().rstrip(".")
    if domain.startswith("[") and domain.endswith("]"):  # address literal, RFC 5321 §4.1.3
        literal = domain[1:-1].removeprefix("IPv6:").removeprefix("ipv6:")
        return Route((Hop(literal, cfg.port, (literal,)),), False, domain)
    relay = relay_for(domain, cfg)
    try:
        if relay is not None:
            host, port = relay
            return Route((Hop(host, port, await _resolve_host(dns, host)),), True, f"relay:{host}:{port}")
        records = await dns.mx(domain)
        if len(records) == 1 and records[0][1] in ("", "."):
            raise RouteError(True, "5.1.10", f"{domain} accepts no mail (null MX, RFC 7505)")
        if not records:
            implicit = tuple(await dns.addresses(domain))
            if not implicit:
                raise RouteError(True, "5.1.2", f"{domain} has no MX and no address")
            return Route((Hop(domain, cfg.port, implicit),), False, domain)
        random.shuffle(records)
        records.sort(key=lambda r: r[0])
        hops: list[Hop] = []
        temp: list[str] = []
        for _, host in records:
            if host in ("", "."):
                continue
            try:
                addresses = tuple(await dns.addresses(host))
            except NoSuchDomain:
                continue
            except DnsTempError as exc:
                temp.append(str(exc))
                continue
            if addresses:
                hops.append(Hop(host, cfg.port, addresses))
        if not hops:
            if temp:
                raise RouteError(False, "4.4.3", f"cannot resolve the MX hosts of {domain}: {temp[0]}")
            raise RouteError(True, "5.1.2", f"the MX hosts of {domain} have no address")
        return Route(tuple(hops), False, domain)
    except NoSuchDomain:
        raise RouteError(True, "5.1.2", f"domain {domain} does not exist") from None
    except DnsTempError as exc:
        raise RouteError(False, "4.4.3", f"DNS lookup failed: {exc}") from None
