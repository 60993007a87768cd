"""IMAPClient's own API over STARTTLS, the way applications use it: folders, APPEND, SEARCH,
FETCH, flags, COPY, MOVE, UID EXPUNGE, IDLE, STATUS, ID, ENABLE, NAMESPACE, UNSELECT, CLOSE."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.imap_interop.clients import ALICE, CAROL, Clients, ok, tls_context
from tests.imap_interop.peers import Target

IDLE_WAIT = 30  # a bound against hanging, not a timing assertion


@pytest.fixture
def client(target: Target) -> Iterator[IMAPClient]:
    c = IMAPClient(target.host, port=target.imap_port, ssl=False, timeout=30)
    c.normalise_times = False
    c.starttls(ssl_context=tls_context(target))
    try:
        yield c
    finally:
        try:
            c.logout()
        except (IMAPClientError, OSError):
            c.shutdown()


def _msg(i: int) -> bytes:
    return f"From: ic@example.org\r\nTo: carol@example.test\r\nSubject: ic {i}\r\n\r\nimapclient {i}\r\n".encode()


def test_imapclient_session(target: Target, client: IMAPClient) -> None:
    assert b"STARTTLS" not in client.capabilities()
    client.login(CAROL, target.users[CAROL])
    caps = set(client.capabilities())
    assert b"IMAP4REV1" in caps and b"UIDPLUS" in caps and b"MOVE" in caps
    server_id = client.id_({"name": "imapclient"})  # RFC 2971: NIL or field/value pairs
    assert server_id is None or all(len(pairs) % 2 == 0 for pairs in server_id)
    ns = client.namespace()
    assert ns.personal[0][0] == "" and ns.personal[0][1] == "/"

    client.create_folder("IC/Work")
    client.create_folder("IC/Archive-2026")
    client.subscribe_folder("IC/Work")
    names = {name for _, _, name in client.list_folders("IC")}
    assert {"IC/Work", "IC/Archive-2026"} <= names
    assert "IC/Work" in {name for _, _, name in client.list_sub_folders("IC")}
    assert client.folder_exists("IC/Work") and not client.folder_exists("IC/Nope")

    when = datetime(2025, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
    for i in range(5):
        client.append("IC/Work", _msg(i), flags=("\\Seen",) if i % 2 else (), msg_time=when)
    status = client.folder_status("IC/Work", ["MESSAGES", "UNSEEN", "UIDNEXT", "UIDVALIDITY"])
    assert status[b"MESSAGES"] == 5 and status[b"UNSEEN"] == 3

    info = client.select_folder("IC/Work")
    assert info[b"EXISTS"] == 5 and info[b"UIDVALIDITY"] == status[b"UIDVALIDITY"]
    uids = client.search(["ALL"])
    assert len(uids) == 5
    assert client.search(["UNSEEN"]) == [uids[0], uids[2], uids[4]]
    assert client.search(["SUBJECT", "ic 3"]) == [uids[3]]
    assert client.search(["SUBJECT", "ic 3"], charset="UTF-8") == [uids[3]]
    got = client.fetch(uids, ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"])
    for i, uid in enumerate(uids):
        assert got[uid][b"BODY[]"] == _msg(i) and got[uid][b"RFC822.SIZE"] == len(_msg(i))
        assert got[uid][b"INTERNALDATE"] == when

    client.add_flags(uids[:2], [b"\\Flagged", b"Project-X"])
    client.remove_flags(uids[1:2], [b"\\Seen"])
    client.set_flags(uids[4:], [b"\\Answered"], silent=True)
    flags = {u: set(f) - {b"\\Recent"} for u, f in client.get_flags(uids).items()}
    assert flags[uids[0]] == {b"\\Flagged", b"Project-X"}
    assert flags[uids[1]] == {b"\\Flagged", b"Project-X"}
    assert flags[uids[4]] == {b"\\Answered"}
    assert client.search(["KEYWORD", "Project-X"]) == uids[:2]

    client.copy(uids[:1], "IC/Archive-2026")
    client.move(uids[1:2], "IC/Archive-2026")
    assert client.search(["ALL"]) == [uids[0], *uids[2:]]
    client.delete_messages(uids[2:3])
    client.uid_expunge(uids[2:3])  # UIDPLUS UID EXPUNGE
    assert client.search(["ALL"]) == [uids[0], uids[3], uids[4]]
    client.unselect_folder()

    arch = client.select_folder("IC/Archive-2026", readonly=True)
    assert arch[b"EXISTS"] == 2
    got = client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"])
    assert sorted(v[b"BODY[]"] for v in got.values()) == [_msg(0), _msg(1)]
    client.close_folder()

    client.rename_folder("IC/Archive-2026", "IC/Old")
    assert client.folder_exists("IC/Old") and not client.folder_exists("IC/Archive-2026")
    client.delete_folder("IC/Old")
    assert not client.folder_exists("IC/Old")


def test_imapclient_idle(target: Target, client: IMAPClient, clients: Clients) -> None:
    client.login(CAROL, target.users[CAROL])
    client.create_folder("IC-Idle")
    client.select_folder("IC-Idle")
    other = clients.login(CAROL)
    client.idle()
    try:
        ok(other.append("IC-Idle", None, None, _msg(1)))
        seen: list[tuple[object, ...]] = []
        deadline = time.monotonic() + IDLE_WAIT
        while not any(r[1:] == (b"EXISTS",) and r[0] == 1 for r in seen) and time.monotonic() < deadline:
            seen += client.idle_check(timeout=5)
        assert (1, b"EXISTS") in seen, seen
    finally:
        client.idle_done()
    assert client.search(["ALL"]) != []


def test_imapclient_plain_login_and_errors(target: Target, client: IMAPClient) -> None:
    with pytest.raises(IMAPClientError):
        client.plain_login(ALICE, "wrong password")
    client.plain_login(ALICE, target.users[ALICE])  # AUTHENTICATE PLAIN
    with pytest.raises(IMAPClientError):
        client.select_folder("No/Such/Folder")
    if "CREATE-INBOX-FAILS" not in target.missing:
        with pytest.raises(IMAPClientError):  # RFC 9051 §6.3.4: creating INBOX is an error
            client.create_folder("INBOX")
    client.noop()
