"""Byte-exact transcripts of every POP3 command and error, over a socket to `courriel serve`."""

from __future__ import annotations

import re

from tests.harness import CourrielServer
from tests.pop3.client import RawClient
from tests.pop3.conftest import PASSWORD, client_tls, msg, new_user, stored

DOTTED = b"From: x@example.test\r\nSubject: dots\r\n\r\n.leading dot\r\n.\r\nmiddle\r\n..two\r\nend\r\n"


def session(srv: CourrielServer, user: str) -> RawClient:
    c = RawClient(srv.port("pop3"))
    assert c.login(user, PASSWORD).startswith(b"+OK ")
    return c


def test_greeting_has_a_unique_apop_timestamp(server: CourrielServer) -> None:
    a, b = RawClient(server.port("pop3")), RawClient(server.port("pop3"))
    pattern = rb"\+OK courriel POP3 server ready <\d+\.[0-9a-f]{16}\.\d+@mail\.example\.test>\r\n"
    assert re.fullmatch(pattern, a.greeting) and re.fullmatch(pattern, b.greeting)
    assert a.greeting != b.greeting
    assert a.cmd("QUIT") == b"+OK bye\r\n" and a.closed()
    b.close()


def test_capa_in_each_state(server: CourrielServer) -> None:
    user = new_user(server)
    c = RawClient(server.port("pop3"))
    assert c.cmd_multi("CAPA") == (
        b"+OK capability list follows\r\n",
        b"TOP\r\nUIDL\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"PIPELINING\r\nSTLS\r\nIMPLEMENTATION courriel\r\n.\r\n",
    )
    assert c.login(user, PASSWORD) == f"+OK {user} has 0 messages (0 octets)\r\n".encode()
    assert c.cmd_multi("CAPA")[1] == (
        b"TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION courriel\r\n.\r\n"
    )
    c.close()


def test_transaction_commands(server: CourrielServer) -> None:
    one, two = msg("one"), DOTTED
    user = new_user(server, [one, two, msg("three")])
    three = msg("three")
    total = len(one) + len(two) + len(three)
    c = session(server, user)
    assert c.cmd("STAT") == f"+OK 3 {total}\r\n".encode()
    assert c.cmd_multi("LIST") == (
        f"+OK 3 messages ({total} octets)\r\n".encode(),
        f"1 {len(one)}\r\n2 {len(two)}\r\n3 {len(three)}\r\n.\r\n".encode(),
    )
    assert c.cmd("LIST 2") == f"+OK 2 {len(two)}\r\n".encode()
    first, listing = c.cmd_multi("UIDL")
    assert first == b"+OK unique-id listing follows\r\n"
    uids = re.fullmatch(rb"1 (\d+\.\d+)\r\n2 (\d+\.\d+)\r\n3 (\d+\.\d+)\r\n\.\r\n", listing)
    assert uids is not None and len(set(uids.groups())) == 3
    assert c.cmd("UIDL 3") == b"+OK 3 " + uids.group(3) + b"\r\n"
    # RETR: the size line, the message dot-stuffed, the terminator; sizes are LIST's
    assert c.cmd_multi("RETR 2") == (
        f"+OK {len(two)} octets\r\n".encode(),
        b"From: x@example.test\r\nSubject: dots\r\n\r\n..leading dot\r\n..\r\nmiddle\r\n...two\r\nend\r\n.\r\n",
    )
    assert c.cmd_multi("TOP 2 1") == (
        b"+OK top of message follows\r\n",
        b"From: x@example.test\r\nSubject: dots\r\n\r\n..leading dot\r\n.\r\n",
    )
    assert c.cmd_multi("TOP 1 0")[1] == one.split(b"\r\n\r\n")[0] + b"\r\n\r\n.\r\n"
    assert c.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
    assert c.cmd("DELE 1") == b"-ERR message 1 is deleted\r\n"
    assert c.cmd("RETR 1") == b"-ERR message 1 is deleted\r\n"
    assert c.cmd("LIST 1") == b"-ERR message 1 is deleted\r\n"
    assert c.cmd("TOP 1 1") == b"-ERR message 1 is deleted\r\n"
    assert c.cmd("UIDL 1") == b"-ERR message 1 is deleted\r\n"
    assert c.cmd("STAT") == f"+OK 2 {total - len(one)}\r\n".encode()
    assert c.cmd_multi("LIST")[1] == f"2 {len(two)}\r\n3 {len(three)}\r\n.\r\n".encode()
    assert c.cmd("RETR 4") == b"-ERR no message 4\r\n"
    assert c.cmd("NOOP") == b"+OK\r\n"
    assert c.cmd("RSET") == f"+OK maildrop has 3 messages ({total} octets)\r\n".encode()
    assert c.cmd("LIST 1") == f"+OK 1 {len(one)}\r\n".encode()
    assert c.cmd("DELE 3") == b"+OK message 3 deleted\r\n"
    assert c.cmd("QUIT") == b"+OK bye, 1 messages deleted\r\n"
    assert c.closed()
    assert stored(server, user) == [one, two]
    # UIDL is stable across sessions
    c = session(server, user)
    assert c.cmd_multi("UIDL")[1] == b"1 " + uids.group(1) + b"\r\n2 " + uids.group(2) + b"\r\n.\r\n"
    assert c.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"


def test_errors_and_states(server: CourrielServer) -> None:
    user = new_user(server, [msg("x")])
    c = RawClient(server.port("pop3"))
    assert c.cmd("STAT") == b"-ERR STAT is not valid in the AUTHORIZATION state\r\n"
    assert c.cmd("RETR 1") == b"-ERR RETR is not valid in the AUTHORIZATION state\r\n"
    assert c.cmd("NOOP") == b"-ERR NOOP is not valid in the AUTHORIZATION state\r\n"
    assert c.cmd("PASS x") == b"-ERR PASS must follow USER\r\n"
    assert c.cmd(f"USER {user}") == b"+OK send PASS\r\n"
    assert c.cmd("NOOP") == b"-ERR NOOP is not valid in the AUTHORIZATION state\r\n"
    assert c.cmd(f"PASS {PASSWORD}") == b"-ERR PASS must follow USER\r\n"  # USER must come just before
    assert c.cmd("HELO x") == b"-ERR unknown command\r\n"
    assert c.cmd("RETR") == b"-ERR RETR needs 1 argument\r\n"  # syntax first, then state
    assert c.cmd(b"X" * 2000) == b"-ERR line too long\r\n"
    assert c.cmd(b"\xff\xfe") == b"-ERR command is not UTF-8\r\n"
    assert c.cmd("") == b"-ERR empty command\r\n"
    assert c.login(user, PASSWORD) == f"+OK {user} has 1 messages ({len(msg('x'))} octets)\r\n".encode()
    assert c.cmd("USER x") == b"-ERR USER is not valid in the TRANSACTION state\r\n"
    assert c.cmd("STLS") == b"-ERR STLS is not valid in the TRANSACTION state\r\n"
    assert c.cmd("RETR") == b"-ERR RETR needs 1 argument\r\n"
    assert c.cmd("RETR 0") == b"-ERR message numbers start at 1\r\n"
    assert c.cmd("TOP 1") == b"-ERR TOP needs 2 arguments\r\n"
    assert c.cmd("LIST 1 2") == b"-ERR too many arguments to LIST\r\n"
    assert c.cmd("stat") == f"+OK 1 {len(msg('x'))}\r\n".encode()
    assert c.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"


def test_pipelining(server: CourrielServer) -> None:
    user = new_user(server, [msg("p1"), msg("p2")])
    c = RawClient(server.port("pop3"))
    c.send(f"USER {user}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nUIDL 2\r\nDELE 2\r\nNOOP\r\nQUIT\r\n".encode())
    assert c.line() == b"+OK send PASS\r\n"
    assert c.line().startswith(b"+OK " + user.encode() + b" has 2 messages")
    assert c.line().startswith(b"+OK 2 ")
    assert c.line() == f"+OK {len(msg('p1'))} octets\r\n".encode()
    assert c.multi() == msg("p1") + b".\r\n"
    assert c.line().startswith(b"+OK 2 ")
    assert c.line() == b"+OK message 2 deleted\r\n"
    assert c.line() == b"+OK\r\n"
    assert c.line() == b"+OK bye, 1 messages deleted\r\n"
    assert c.closed()
    assert stored(server, user) == [msg("p1")]


def test_dropped_connection_removes_nothing(server: CourrielServer) -> None:
    user = new_user(server, [msg("d1"), msg("d2")])
    c = session(server, user)
    assert c.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
    assert c.cmd("DELE 2") == b"+OK message 2 deleted\r\n"
    c.close()  # no QUIT: no UPDATE state
    c = session(server, user)  # the lock was released with the connection
    assert c.cmd("STAT").startswith(b"+OK 2 ")
    assert c.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"
    assert stored(server, user) == [msg("d1"), msg("d2")]


def test_maildrop_is_exclusive(server: CourrielServer) -> None:
    user = new_user(server, [msg("e1")])
    first = RawClient(server.port("pop3s"), tls=client_tls(server))  # pop3 and pop3s share the lock
    assert first.login(user, PASSWORD).startswith(b"+OK ")
    second = RawClient(server.port("pop3"))
    assert second.login(user, PASSWORD) == b"-ERR [IN-USE] maildrop already locked by another POP3 session\r\n"
    assert second.cmd("STAT") == b"-ERR STAT is not valid in the AUTHORIZATION state\r\n"
    assert first.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
    assert first.cmd("QUIT") == b"+OK bye, 1 messages deleted\r\n"
    assert first.closed()
    assert second.login(user, PASSWORD) == f"+OK {user} has 0 messages (0 octets)\r\n".encode()
    assert second.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"


def test_quit_before_login(server: CourrielServer) -> None:
    c = RawClient(server.port("pop3"))
    assert c.cmd(f"USER {new_user(server)}") == b"+OK send PASS\r\n"
    assert c.cmd("QUIT") == b"+OK bye\r\n"
    assert c.closed()


def test_too_many_bad_commands_closes(server: CourrielServer) -> None:
    c = RawClient(server.port("pop3"))
    c.send(b"GET / HTTP/1.1\r\n" * 19)
    for _ in range(19):
        assert c.line() == b"-ERR unknown command\r\n"
    assert c.cmd("BOGUS") == b"-ERR unknown command; too many bad commands, closing\r\n"
    assert c.closed()


def test_line_beyond_the_buffer_closes(server: CourrielServer) -> None:
    c = RawClient(server.port("pop3"))
    c.send(b"NOOP " + b"x" * 100_000 + b"\r\n")
    assert c.line() == b"-ERR line too long, closing\r\n"
    assert c.closed()


def test_bare_lf_messages_stay_framed(server: CourrielServer) -> None:
    # IMAP APPEND may store bare LF: RETR sends the stored octets (LIST's size), and stuffs a
    # dot after any LF, so that a client splitting lines on LF never sees an early "."
    data = b"Subject: lf\n\nfirst\n.\nlast\r\n"
    user = new_user(server, [data])
    c = session(server, user)
    assert c.cmd("LIST 1") == f"+OK 1 {len(data)}\r\n".encode()
    assert c.cmd_multi("RETR 1") == (f"+OK {len(data)} octets\r\n".encode(),
                                     b"Subject: lf\n\nfirst\n..\nlast\r\n.\r\n")  # fmt: skip
    c.close()


def test_idle_timeout(tmp_path: object) -> None:
    from pathlib import Path

    srv = CourrielServer(Path(str(tmp_path)), users={}, only=("pop3",), plaintext_auth=True,
                         env={"COURRIEL_POP3_IDLE_TIMEOUT": "1"})  # fmt: skip
    with srv:
        user = new_user(srv, [msg("i1")])
        c = session(srv, user)
        assert c.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
        # then nothing: the autologout timer ends the session without the UPDATE state
        assert c.line() == b"-ERR autologout: idle for too long\r\n"
        assert c.closed()
        idle = RawClient(srv.port("pop3"))
        assert idle.line() == b"-ERR autologout: idle for too long\r\n"
        assert stored(srv, user) == [msg("i1")]


def test_shutdown_says_so_and_removes_nothing(tmp_path: object) -> None:
    from pathlib import Path

    srv = CourrielServer(Path(str(tmp_path)), users={}, only=("pop3",), plaintext_auth=True)
    srv.start()
    try:
        user = new_user(srv, [msg("s1")])
        c = session(srv, user)
        assert c.cmd("DELE 1") == b"+OK message 1 deleted\r\n"
    finally:
        assert srv.stop() == 0
    assert c.line() == b"-ERR [SYS/TEMP] server shutting down\r\n"
    assert c.closed()
    assert stored(srv, user) == [msg("s1")]
