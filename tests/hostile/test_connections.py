"""5,000 simultaneous connections: all greeted, memory per idle connection bounded, the one
beyond limits.max_connections refused with each protocol's busy reply, and the server back
to serving others as soon as connections go away.

The connections come from 25 loopback addresses (200 each, the default
limits.max_connections_per_ip), so the total limit is what refuses the next one.
"""

from __future__ import annotations

import socket

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import Guard, raise_nofile, rss_kb, serve_others, wait_for
from tests.tools import unavailable

TOTAL = 5000
SOURCES = [f"127.0.1.{n}" for n in range(1, 26)]
PROTOCOLS = ("smtp", "imap", "pop3")
GREETING = {"smtp": b"220 ", "imap": b"* OK ", "pop3": b"+OK "}
BUSY = {
    "smtp": b"421 4.7.0 mail.example.test too many connections, try again later\r\n",
    "imap": b"* BYE [UNAVAILABLE] too many connections\r\n",
    "pop3": b"-ERR [SYS/TEMP] too many connections\r\n",
}
#: Idle connections cost the server a socket, a StreamReader/Writer pair, a task and the
#: protocol's session object; 100 KB each would be 500 MB for 5,000 and a sign of a buffer
#: kept per connection.
MAX_KB_PER_CONNECTION = 100


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


def connect(srv: CourrielServer, protocol: str, source: str) -> tuple[socket.socket, bytes]:
    s = socket.socket()
    s.settimeout(60)
    s.bind((source, 0))
    s.connect(("127.0.0.1", srv.port(protocol)))
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def admitted(srv: CourrielServer) -> bool:
    s, greeting = connect(srv, "imap", "127.0.0.1")
    s.close()
    return greeting.startswith(b"* OK ")


def test_five_thousand_connections(srv: CourrielServer) -> None:
    if raise_nofile() < TOTAL + 100:
        unavailable("RLIMIT_NOFILE's hard limit is too low for 5,000 connections")
    guard = Guard(srv)
    held: list[socket.socket] = []
    try:
        with guard.attack():
            for i in range(TOTAL - 10):
                protocol = PROTOCOLS[i % 3]
                s, greeting = connect(srv, protocol, SOURCES[i // 200])
                held.append(s)
                assert greeting.startswith(GREETING[protocol]), (i, greeting)
            rss = rss_kb(srv)
            per_connection = (rss - guard.baseline_kb) / len(held)
            print(f"\n{len(held)} idle connections: RSS {rss // 1024} MB, {per_connection:.1f} KB each")
            assert per_connection < MAX_KB_PER_CONNECTION
            serve_others(srv)  # three connections at a time: within the ten free slots
            for i in range(TOTAL - 10, TOTAL):
                s, greeting = connect(srv, PROTOCOLS[i % 3], SOURCES[i // 200])
                held.append(s)
                assert greeting.startswith(GREETING[PROTOCOLS[i % 3]])
            for protocol in PROTOCOLS:  # one too many, on each protocol
                s, reply = connect(srv, protocol, "127.0.0.1")
                assert reply == BUSY[protocol]
                s.close()
            for s in held[:100]:
                s.close()
            del held[:100]
            # Slots come back as the server sees the connections close.
            wait_for(lambda: admitted(srv), "free slots")
            serve_others(srv)
            assert rss_kb(srv) < 2 * 300 * 1024
        # guard.attack ends with serve_others and the memory bounds, connections still open.
    finally:
        for s in held:
            s.close()
