"""Slowloris and clients that never read: every protocol ends such connections by its
configured timeouts (short here, through COURRIEL_* variables) and serves others meanwhile.

- SMTP: a command line must arrive whole within smtp.command_timeout (a byte now and then
  does not extend it); a dribbled DATA ends at smtp.session_timeout; a client that leaves
  our replies unread is dropped after command_timeout.
- IMAP: before login, imap.login_timeout bounds each command (and an unterminated literal);
  after login, idle_timeout (at least 30 minutes, RFC 9051 §5.4) does, so it is not run here.
- POP3: pop3.idle_timeout (one timer: nothing read, or nothing taken by the client).
- ManageSieve: managesieve.idle_timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import Guard, Raw, serve_others, start_server, wait_for

PER_PROTOCOL = 10

ENV = {
    "COURRIEL_SMTP_COMMAND_TIMEOUT": "2",
    "COURRIEL_SMTP_DATA_TIMEOUT": "2",
    "COURRIEL_SMTP_SESSION_TIMEOUT": "8",
    "COURRIEL_IMAP_LOGIN_TIMEOUT": "2",
    "COURRIEL_POP3_IDLE_TIMEOUT": "2",
    "COURRIEL_MANAGESIEVE_IDLE_TIMEOUT": "2",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    server = start_server(tmp_path_factory.mktemp("slowloris"), env=ENV, only=("smtp", "imap", "pop3", "managesieve"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def guard(srv: CourrielServer) -> Guard:
    return Guard(srv)


class Dribbler:
    """Sends one byte to each connection every half second until the server closes it."""

    def __init__(self, conns: list[Raw], payload: bytes) -> None:
        self.conns = conns
        self.payload = payload
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        alive = list(self.conns)
        while alive and not self.stop.wait(0.5):
            byte = self.payload[i % len(self.payload) : i % len(self.payload) + 1]
            i += 1
            for c in list(alive):
                try:
                    c.sock.send(byte)
                except OSError:
                    alive.remove(c)

    def join(self) -> None:
        self.stop.set()
        self.thread.join(10)


def last_line_before_close(c: Raw) -> bytes:
    """Read until the server closes; return the last line it sent (b"" if none)."""
    last = b""
    while True:
        line = c.line()
        if not line:
            return last
        last = line


GREETING = {"smtp": b"220 ", "imap": b"* OK ", "pop3": b"+OK ", "managesieve": b'"IMPLEMENTATION"'}
TIMEOUT_REPLY = {
    "smtp": b"421 4.4.2 mail.example.test timeout, closing\r\n",
    "imap": b"* BYE autologout: idle for too long\r\n",
    "pop3": b"-ERR autologout: idle for too long\r\n",
    "managesieve": b'BYE (TRYLATER) "idle too long"\r\n',
}


def greeted(srv: CourrielServer, protocol: str) -> Raw:
    c = Raw(srv.port(protocol))
    assert c.line().startswith(GREETING[protocol])
    return c


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "managesieve"])
def test_slowloris_commands(srv: CourrielServer, guard: Guard, protocol: str) -> None:
    """Ten connections each sending a byte every half second, never a whole line."""
    with guard.attack():
        conns = [greeted(srv, protocol) for _ in range(PER_PROTOCOL)]
        dribbler = Dribbler(conns, b"NOOP-AND-MORE-NOOP-")
        serve_others(srv)  # while they dribble
        try:
            for c in conns:
                assert last_line_before_close(c) == TIMEOUT_REPLY[protocol]
        finally:
            dribbler.join()
            for c in conns:
                c.close()


def test_slowloris_smtp_data(srv: CourrielServer, guard: Guard) -> None:
    """DATA dribbled a byte at a time: each read is in time, but the session has an end."""
    with guard.attack():
        c = greeted(srv, "smtp")
        c.send(b"EHLO slow.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert [c.smtp_reply() for _ in range(4)][3].startswith(b"354 ")
        dribbler = Dribbler([c], b"Subject: slow\r\n\r\nslowly\r\n")
        serve_others(srv)
        try:
            assert last_line_before_close(c) == b"421 4.4.2 mail.example.test session too long, closing\r\n"
        finally:
            dribbler.join()
            c.close()


def test_imap_unterminated_literal_before_login(srv: CourrielServer, guard: Guard) -> None:
    with guard.attack():
        c = greeted(srv, "imap")
        c.send(b"a LOGIN {20}\r\n")
        assert c.line() == b"+ Ready for literal data\r\n"
        c.send(b"alice")
        serve_others(srv)
        assert last_line_before_close(c) == TIMEOUT_REPLY["imap"]
        c.close()


#: A command producing a long response, repeated: the replies pile up unread.
FLOOD = {
    "smtp": b"EHLO flood.test\r\n",
    "imap": b"a CAPABILITY\r\n",
    "pop3": b"CAPA\r\n",
    "managesieve": b"CAPABILITY\r\n",
}


@pytest.mark.parametrize("protocol", ["smtp", "imap", "pop3", "managesieve"])
def test_client_that_never_reads(srv: CourrielServer, guard: Guard, protocol: str) -> None:
    """Pipelined commands whose responses are never read: the server's output stays bounded
    (it stops reading once its buffer is full) and the connection is dropped by the
    timeout instead of being held for ever."""
    with guard.attack():
        c = Raw(srv.port(protocol), rcvbuf=4096)
        c.sock.settimeout(2)
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # stops long before: the server stops reading
                c.sock.sendall(FLOOD[protocol] * 4096)
                sent += len(FLOOD[protocol]) * 4096
        except (TimeoutError, ConnectionResetError, BrokenPipeError):
            pass
        assert sent < 64 * 1024 * 1024, "the server kept reading without sending"
        serve_others(srv)  # while the server's buffer for that connection is full
        guard.check_memory()
        wait_for(lambda: not c.established(), "the server to drop the connection")
        c.close()
