"""The PROXY protocol (HAProxy, versions 1 and 2): who the client really is behind a proxy.

A TCP proxy in front of courriel (HAProxy ``send-proxy``/``send-proxy-v2``, a cloud load
balancer) opens each connection with one header naming the client's address and port.
A listener with ``proxy_protocol = true`` reads that header before anything else (before
the greeting, before the TLS handshake of an implicit-TLS listener), accepts it only from
``[server] trusted_proxies``, and from then on reports the client's address as the peer
(logs, Received headers, connection and authentication limits, SPF).

The spec is HAProxy's ``doc/proxy-protocol.txt``; section numbers below refer to it.

- :func:`parse` is the pure part: bytes in, a :class:`ProxyHeader`, ``None`` (a valid
  beginning, more bytes needed) or :class:`ProxyError`.
- :func:`read_header` reads exactly the header from a socket (peeking, so that what the
  client sends after it, a TLS ClientHello, stays in the socket for the TLS layer).
- :class:`ProxyPolicy` says which peers may send a header (per listener).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from courriel.config import Config

#: §2.2: the 12-byte signature that starts a version 2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
#: §2.1: the longest version 1 line, CRLF included ("PROXY UNKNOWN" + two IPv6 + ports).
V1_MAX = 107
#: Version 2 addresses take at most 216 bytes (AF_UNIX); TLVs may follow (§2.2.7). We skip
#: TLVs but bound them: a longer header is refused.
V2_MAX_PAYLOAD = 1024
MAX_HEADER = 16 + V2_MAX_PAYLOAD

_IPV4 = re.compile(rb"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_IPV6 = re.compile(rb"[0-9A-Fa-f:]{2,39}")
_PORT = re.compile(rb"0|[1-9][0-9]{0,4}")


class ProxyError(ValueError):
    """Not a valid PROXY protocol header: the connection must be closed (§2.1)."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    version: int
    #: Bytes the header takes on the wire (what to skip before the client's own data).
    length: int
    #: Version 2 LOCAL command: the proxy itself connected (a health check).
    local: bool = False
    #: The client's (address, port), and the address it connected to; None when the
    #: header says to use the real connection's endpoints (LOCAL, UNKNOWN, UNSPEC, AF_UNIX,
    #: datagram protocols).
    source: tuple[str, int] | None = None
    destination: tuple[str, int] | None = None


def parse(data: bytes) -> ProxyHeader | None:
    """Parse the header at the start of ``data``.

    Returns None when ``data`` is a proper beginning of a header that may still turn out
    valid (then every byte of ``data`` belongs to the header); raises :class:`ProxyError`
    as soon as the bytes cannot start a valid header.
    """
    if not data:
        return None
    if data[:1] == b"P":
        return _parse_v1(data)
    if data[:1] == b"\r":
        return _parse_v2(data)
    raise ProxyError("no PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    head = data[:V1_MAX]
    if not head.startswith(V1_PREFIX[: len(head)]):
        raise ProxyError("no PROXY protocol header")
    end = head.find(b"\r\n")
    # §2.1: a lone CR or LF never ends the line. Only the line itself is looked at: what
    # follows the CRLF is the client's (a TLS ClientHello may hold any byte).
    line = head if end == -1 else head[:end]
    if b"\n" in line:
        raise ProxyError("bare LF in PROXY header")
    cr = line.find(b"\r")
    if cr != -1 and (end != -1 or cr != len(head) - 1):  # a final CR may start the CRLF
        raise ProxyError("bare CR in PROXY header")
    if end == -1:
        if len(head) >= V1_MAX:
            raise ProxyError(f"PROXY header without CRLF in the first {V1_MAX} bytes")
        return None
    length = end + 2
    parts = line.split(b" ")  # the line starts with "PROXY " (checked above)
    proto = parts[1]
    if proto == b"UNKNOWN":
        # §2.1: the receiver ignores anything before the CRLF and uses the real endpoints.
        return ProxyHeader(1, length)
    if proto not in (b"TCP4", b"TCP6"):
        raise ProxyError(f"unknown PROXY protocol {proto[:16]!r}")
    if len(parts) != 6:
        raise ProxyError("PROXY header needs exactly two addresses and two ports")
    src = _v1_address(parts[2], proto)
    dst = _v1_address(parts[3], proto)
    return ProxyHeader(1, length, source=(src, _v1_port(parts[4])), destination=(dst, _v1_port(parts[5])))


def _v1_address(text: bytes, proto: bytes) -> str:
    pattern = _IPV4 if proto == b"TCP4" else _IPV6
    if not pattern.fullmatch(text):
        raise ProxyError(f"bad {proto.decode()} address {text[:40]!r}")
    try:
        addr = ipaddress.ip_address(text.decode("ascii"))
    except ValueError:
        raise ProxyError(f"bad {proto.decode()} address {text[:40]!r}") from None
    if addr.version != (4 if proto == b"TCP4" else 6):
        raise ProxyError(f"bad {proto.decode()} address {text[:40]!r}")
    return _text(addr)


def _v1_port(text: bytes) -> int:
    # §2.1: decimal, no heading zeroes, 0..65535.
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise ProxyError(f"bad port {text[:8]!r}")
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < 16:
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyError("no PROXY protocol header")
        if len(data) > 12:
            _v2_fields(data[12], data[13] if len(data) > 13 else 0)
        return None
    if data[:12] != V2_SIGNATURE:
        raise ProxyError("no PROXY protocol header")
    command, family, transport = _v2_fields(data[12], data[13])
    payload_len = int.from_bytes(data[14:16], "big")
    if payload_len > V2_MAX_PAYLOAD:
        raise ProxyError(f"PROXY v2 header of {payload_len} bytes is too long")
    length = 16 + payload_len
    if len(data) < length:
        return None
    payload = data[16:length]
    if command == 0:
        # §2.2: LOCAL: the proxy's own connection (health check); use the real endpoints.
        return ProxyHeader(2, length, local=True)
    if transport == 1 and family == 1:  # TCP over IPv4
        if payload_len < 12:
            raise ProxyError("PROXY v2 TCP4 address block too short")
        src4, dst4 = ipaddress.IPv4Address(payload[0:4]), ipaddress.IPv4Address(payload[4:8])
        sport, dport = int.from_bytes(payload[8:10], "big"), int.from_bytes(payload[10:12], "big")
        return ProxyHeader(2, length, source=(_text(src4), sport), destination=(_text(dst4), dport))
    if transport == 1 and family == 2:  # TCP over IPv6
        if payload_len < 36:
            raise ProxyError("PROXY v2 TCP6 address block too short")
        src6, dst6 = ipaddress.IPv6Address(payload[0:16]), ipaddress.IPv6Address(payload[16:32])
        sport, dport = int.from_bytes(payload[32:34], "big"), int.from_bytes(payload[34:36], "big")
        return ProxyHeader(2, length, source=(_text(src6), sport), destination=(_text(dst6), dport))
    # UNSPEC, AF_UNIX or datagrams: §2.2 lets the receiver fall back to the real endpoints.
    return ProxyHeader(2, length)


def _v2_fields(ver_cmd: int, fam: int) -> tuple[int, int, int]:
    """(command, address family, transport); §2.2: unknown values are refused."""
    if ver_cmd >> 4 != 2:
        raise ProxyError(f"PROXY protocol version {ver_cmd >> 4} is not 2")
    command = ver_cmd & 0x0F
    if command not in (0, 1):
        raise ProxyError(f"unknown PROXY v2 command {command}")
    family, transport = fam >> 4, fam & 0x0F
    if family > 3 or transport > 2:
        raise ProxyError(f"unknown PROXY v2 address family/protocol 0x{fam:02x}")
    return command, family, transport


def _text(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Address text as our logs and limits use it; IPv4-mapped IPv6 becomes IPv4."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


# --- reading from a socket ------------------------------------------------------------


async def read_header(sock: socket.socket, timeout: float) -> ProxyHeader:
    """Read exactly one header from a non-blocking connected socket.

    Bytes are peeked first and only the header's own bytes are consumed, so data the
    client sent right behind it (a TLS ClientHello, pipelined commands) stays in the
    socket for whoever reads next. Raises :class:`ProxyError`, TimeoutError or OSError.
    """
    loop = asyncio.get_running_loop()
    buf = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                peek = sock.recv(MAX_HEADER - len(buf), socket.MSG_PEEK)
            except BlockingIOError:
                await _readable(loop, sock)
                continue
            if not peek:
                raise ProxyError("connection closed before the PROXY header ended")
            header = parse(buf + peek)
            # None: every byte seen belongs to the header, so consuming them is safe.
            take = len(peek) if header is None else header.length - len(buf)
            got = sock.recv(take)
            if len(got) != take:  # pragma: no cover - the kernel returns what was peeked
                raise ProxyError("short read of the PROXY header")
            buf += got
            if header is not None:
                return header


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    fd = sock.fileno()
    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


# --- policy ----------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Iterable[str], key: str = "server.trusted_proxies") -> tuple[Network, ...]:
    """Addresses or CIDR networks; ValueError naming the bad one."""
    out: list[Network] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{key}: {item!r} is not an address or network") from None
    return tuple(out)


@dataclass(frozen=True)
class ProxyPolicy:
    """A listener that expects a PROXY header: who may send it, how long to wait for it."""

    trusted: tuple[Network, ...]
    timeout: float = 5.0

    def trusts(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.trusted)


def policies(cfg: Config) -> dict[str, ProxyPolicy]:
    """Listener name -> policy, for every listener with ``proxy_protocol = true``."""
    trusted = parse_networks(cfg.server.trusted_proxies)
    return {
        name: ProxyPolicy(trusted, float(cfg.server.proxy_timeout))
        for name, section in cfg.listeners().items()
        if section.proxy_protocol and section.enabled
    }


# --- accepting ---------------------------------------------------------------------------

log = logging.getLogger("courriel.net")

#: What a listener does with a connection once its header is read (and TLS is up).
OnConnection = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ProxyHeader], Awaitable[None]]


def bind(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Listening sockets for ``host:port`` (every address the name resolves to)."""
    out: list[socket.socket] = []
    seen: set[tuple[int, tuple[object, ...]]] = set()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, sockaddr in infos:
            if (family, sockaddr) in seen:
                continue
            seen.add((family, sockaddr))
            sock = socket.socket(family, kind, proto)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in out:
            sock.close()
        raise
    return out


class ProxyAcceptor:
    """Accepts connections on one listening socket for a ``proxy_protocol`` listener.

    Each connection must come from a trusted proxy (else it is closed and logged, nothing
    read or sent) and start with a valid header within the policy's timeout (else the
    same). The socket then goes to asyncio's streams, with TLS first for an implicit-TLS
    listener, and ``on_connection`` runs with the header.
    """

    def __init__(
        self,
        name: str,
        sock: socket.socket,
        policy: ProxyPolicy,
        on_connection: OnConnection,
        ssl_context: ssl.SSLContext | None,
        read_limit: int,
    ) -> None:
        self.name = name
        self.sock = sock
        self.policy = policy
        self.on_connection = on_connection
        self.ssl_context = ssl_context
        self.read_limit = read_limit
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._accept_loop())

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self.sock.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, addr = await loop.sock_accept(self.sock)
            except OSError as exc:  # EMFILE and friends: wait, then go on accepting
                log.warning("%s: accept failed: %s", self.name, exc)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.create_task(self._handshake(client, str(addr[0])))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _handshake(self, client: socket.socket, ip: str) -> None:
        client.setblocking(False)
        if not self.policy.trusts(ip):
            # The spec (§2) forbids guessing: on this listener only trusted proxies may
            # connect, so nobody can claim another address.
            log.warning("%s: refused %s: not in server.trusted_proxies (proxy_protocol listener)", self.name, ip)
            client.close()
            return
        try:
            header = await read_header(client, self.policy.timeout)
        except (ProxyError, TimeoutError, OSError) as exc:
            log.warning("%s: refused %s: bad PROXY header: %s", self.name, ip, exc or "timeout")
            client.close()
            return
        except asyncio.CancelledError:
            client.close()
            raise
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.read_limit)

        def connected(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Awaitable[None]:
            return self.on_connection(r, w, header)

        protocol = asyncio.StreamReaderProtocol(reader, connected)
        try:
            await loop.connect_accepted_socket(
                lambda: protocol,
                client,
                ssl=self.ssl_context,
                ssl_handshake_timeout=30 if self.ssl_context else None,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("%s: %s: TLS handshake failed: %r", self.name, header.source or ip, exc)
            client.close()
