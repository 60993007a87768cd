"""imaplib: mailbox commands. CREATE, DELETE, RENAME (INBOX too), SUBSCRIBE, UNSUBSCRIBE,
LIST (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE, RFC 3348
CHILDREN), LSUB, NAMESPACE (RFC 2342), SELECT, EXAMINE, STATUS (RFC 9051 §6.3)."""

from __future__ import annotations

import imaplib
from typing import Any

import pytest
from imapclient.response_parser import parse_response

from tests.imap_interop.clients import (
    BOB,
    CAROL,
    Clients,
    capabilities,
    fetch,
    has_cap,
    need_cap,
    ok,
    untagged,
)
from tests.imap_interop.peers import Target

SPECIAL = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive"}


def _name(v: Any) -> str:
    return str(v) if isinstance(v, int) else v.decode()


def parse_list(data: list[Any]) -> dict[str, tuple[set[str], str | None, Any]]:
    """LIST/LSUB lines -> {name: ({attributes, lower-case}, delimiter, extended data or None)}."""
    out: dict[str, tuple[set[str], str | None, Any]] = {}
    for line in data:
        if line is None:
            continue
        parsed = parse_response([line] if isinstance(line, bytes) else list(line))
        attrs, delim, name = parsed[0], parsed[1], parsed[2]
        out[_name(name)] = ({a.decode().lower() for a in attrs}, delim.decode() if delim else None, parsed[3:] or None)
    return out


def lst(conn: imaplib.IMAP4, *args: str) -> dict[str, tuple[set[str], str | None, Any]]:
    typ, data = conn._simple_command("LIST", *args)
    assert typ == "OK", data
    return parse_list(untagged(conn, "LIST"))


def status(conn: imaplib.IMAP4, mailbox: str, items: str) -> dict[str, int]:
    data = ok(conn.status(mailbox, f"({items})"))
    parsed = parse_response([data[0]])
    return {k.decode().upper(): v for k, v in zip(parsed[1][::2], parsed[1][1::2])}


def test_special_use_mailboxes_and_delimiter(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    found = lst(conn, '""', "*")
    assert "INBOX" in found
    assert all(delim == "/" for _, delim, _ in found.values())
    # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and root
    _typ, data = conn.list('""', '""')
    root = parse_list(data)
    assert next(iter(root.values()))[1] == "/"
    caps = capabilities(conn)
    if has_cap(target, caps, "SPECIAL-USE"):
        for name, use in SPECIAL.items():
            assert use.lower() in found[name][0], (name, found[name])
        # RFC 6154 §5.1: the SPECIAL-USE selection option lists only those
        special = lst(conn, "(SPECIAL-USE)", '""', "*")
        assert set(special) == set(SPECIAL)
        returned = lst(conn, '""', "*", "RETURN", "(SPECIAL-USE)")
        assert "\\sent" in returned["Sent"][0] and not ({"\\sent", "\\trash"} & returned["INBOX"][0])


def test_create_list_children(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    ok(conn.create("Projects/2026/Q1"))  # §6.3.4: superiors are created as needed
    ok(conn.create("Projects/Other"))
    typ, data = conn.create("Projects/Other")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    found = lst(conn, '""', "Projects*")
    assert set(found) == {"Projects", "Projects/2026", "Projects/2026/Q1", "Projects/Other"}
    if has_cap(target, capabilities(conn), "CHILDREN"):
        assert "\\haschildren" in found["Projects"][0]
        assert "\\haschildren" in found["Projects/2026"][0]
        assert "\\hasnochildren" in found["Projects/2026/Q1"][0]
    top = lst(conn, '""', "%")  # % does not match the delimiter
    assert "Projects" in top and "Projects/2026" not in top
    assert set(lst(conn, '"Projects/"', "%")) == {"Projects/2026", "Projects/Other"}
    # mailbox names in modified UTF-7 (§5.1.3) for an IMAP4rev1 client
    ok(conn.create("Entw&APw-rfe"))
    assert "Entw&APw-rfe" in lst(conn, '""', "Entw*")
    status_ = status(conn, "Entw&APw-rfe", "MESSAGES")
    assert status_["MESSAGES"] == 0


def test_list_extended(target: Target, clients: Clients) -> None:
    conn = clients.login(CAROL)
    need_cap(target, capabilities(conn), "LIST-EXTENDED")
    for name in ("Lx/a", "Lx/b", "Lx/c/d"):
        ok(conn.create(name))
    ok(conn.subscribe("Lx/a"))
    ok(conn.subscribe("Lx/c/d"))
    ok(conn.unsubscribe("Lx/c/d"))
    ok(conn.create("Lx/gone"))
    ok(conn.subscribe("Lx/gone"))
    ok(conn.delete("Lx/gone"))  # §6.3.7: the subscription stays; RFC 5258 §3: \NonExistent
    subscribed = lst(conn, "(SUBSCRIBED)", '""', "Lx/*")
    assert set(subscribed) == {"Lx/a", "Lx/gone"}
    assert all("\\subscribed" in attrs for attrs, _, _ in subscribed.values())
    assert "\\nonexistent" in subscribed["Lx/gone"][0]
    # several patterns at once
    assert set(lst(conn, '""', '("Lx/a" "Lx/b")')) == {"Lx/a", "Lx/b"}
    # RETURN (SUBSCRIBED CHILDREN) adds the attributes without filtering
    returned = lst(conn, '""', "Lx/%", "RETURN", "(SUBSCRIBED CHILDREN)")
    assert set(returned) == {"Lx/a", "Lx/b", "Lx/c"}
    assert "\\subscribed" in returned["Lx/a"][0] and "\\subscribed" not in returned["Lx/b"][0]
    assert "\\haschildren" in returned["Lx/c"][0] and "\\hasnochildren" in returned["Lx/b"][0]
    # RECURSIVEMATCH: a parent whose child is subscribed gets CHILDINFO
    ok(conn.subscribe("Lx/c/d"))
    rec = lst(conn, "(SUBSCRIBED RECURSIVEMATCH)", '""', "Lx/%")
    assert set(rec) == {"Lx/a", "Lx/c", "Lx/gone"}
    assert rec["Lx/c"][2] is not None and b"SUBSCRIBED" in str(rec["Lx/c"][2]).upper().encode()
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):  # RFC 5258 §3: RECURSIVEMATCH alone
        conn._simple_command("LIST", "(RECURSIVEMATCH)", '""', "*")


def test_list_status(target: Target, clients: Clients) -> None:
    conn = clients.login(CAROL)
    need_cap(target, capabilities(conn), "LIST-STATUS")
    ok(conn.create("Ls"))
    ok(conn.create("Ls/sub"))
    for i in range(3):
        ok(conn.append("Ls", "(\\Seen)" if i else None, None, f"Subject: {i}\r\n\r\nbody {i}\r\n".encode()))
    typ, _data = conn._simple_command("LIST", '""', "Ls*", "RETURN", "(STATUS (MESSAGES UNSEEN UIDNEXT))")
    assert typ == "OK"
    names = parse_list(untagged(conn, "LIST"))
    assert set(names) == {"Ls", "Ls/sub"}
    statuses = {}
    for line in untagged(conn, "STATUS"):
        parsed = parse_response([line])
        statuses[_name(parsed[0])] = {k.decode().upper(): v for k, v in zip(parsed[1][::2], parsed[1][1::2])}
    assert statuses["Ls"] == {"MESSAGES": 3, "UNSEEN": 1, "UIDNEXT": status(conn, "Ls", "UIDNEXT")["UIDNEXT"]}
    assert statuses["Ls/sub"]["MESSAGES"] == 0


def test_lsub_and_subscriptions(target: Target, clients: Clients) -> None:
    conn = clients.login(CAROL)
    ok(conn.create("Sub1"))
    ok(conn.create("Sub1/kid"))
    ok(conn.subscribe("Sub1/kid"))
    typ, data = conn.lsub('""', "Sub1*")
    assert typ == "OK"
    found = parse_list(data)
    assert "Sub1/kid" in found
    # §6.3.9 (RFC 3501 LSUB): "%" may list an unsubscribed parent of a subscribed child as \Noselect
    typ, data = conn.lsub('""', "Sub1")
    assert set(parse_list(data)) <= {"Sub1"}
    ok(conn.unsubscribe("Sub1/kid"))
    typ, data = conn.lsub('""', "Sub1*")
    assert "Sub1/kid" not in parse_list(data)


def test_namespace(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    need_cap(target, capabilities(conn), "NAMESPACE")
    typ, data = conn.namespace()
    assert typ == "OK"
    personal, _other, _shared = parse_response([data[0]])
    assert personal[0][0] == b"" and personal[0][1] == b"/"


def test_select_and_examine(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    ok(conn.create("Sel"))
    for i in range(3):
        ok(conn.append("Sel", "(\\Seen)" if i == 0 else None, None, f"Subject: s{i}\r\n\r\nx\r\n".encode()))
    typ, data = conn.select("Sel")
    assert typ == "OK" and data == [b"3"]
    # §6.3.2: FLAGS, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT, READ-WRITE (imaplib files the
    # response codes under their names)
    got = dict(conn.untagged_responses)
    for code in ("FLAGS", "PERMANENTFLAGS", "UIDVALIDITY", "UIDNEXT", "READ-WRITE"):
        assert code in got, (code, got)
    assert b"\\Seen" in got["FLAGS"][0] and b"\\*" in got["PERMANENTFLAGS"][0]
    st = status(conn, "Sel", "UIDVALIDITY UIDNEXT MESSAGES")
    assert st["MESSAGES"] == 3
    typ, data = conn.select("Sel", readonly=True)  # EXAMINE
    assert typ == "OK" and data == [b"3"]
    assert "READ-ONLY" in conn.untagged_responses
    typ, _ = conn.store("1", "+FLAGS", "(\\Flagged)")
    # §6.3.3: no change to a read-only mailbox (refused, or ignored as Dovecot does)
    flags = fetch(conn, "1", "(FLAGS)")[1][b"FLAGS"]
    assert b"\\Flagged" not in flags
    typ, data = conn.select("No/Such/Box")
    assert typ == "NO" and conn.state == "AUTH"  # §6.3.2: a failed SELECT leaves no mailbox selected
    if "NONEXISTENT" not in target.missing:
        assert data[0] is not None and b"[NONEXISTENT]" in data[0]  # RFC 5530 / RFC 9051 §7.1


def test_delete(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    ok(conn.create("Del"))
    ok(conn.create("Del/child"))
    ok(conn.append("Del", None, None, b"Subject: d\r\n\r\nd\r\n"))
    ok(conn.delete("Del/child"))
    # §6.3.5: deleting a mailbox with inferiors removes its messages and leaves \Noselect
    # (a server may refuse instead; courriel keeps the name as \Noselect)
    ok(conn.create("Del/child2"))
    typ, _ = conn.delete("Del")
    if typ == "OK":
        found = lst(conn, '""', "Del*")
        assert "\\noselect" in found["Del"][0] and "Del/child2" in found
        typ, _ = conn.select("Del")
        assert typ == "NO"
    else:
        assert target.name != "courriel"
    typ, _ = conn.delete("INBOX")
    assert typ == "NO"  # §6.3.5: deleting INBOX is an error
    typ, _data = conn.delete("Never/Existed")
    assert typ == "NO"


def test_rename(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    ok(conn.create("Old"))
    ok(conn.create("Old/kid"))
    ok(conn.append("Old", None, None, b"Subject: r\r\n\r\nr\r\n"))
    ok(conn.rename("Old", "New/Place"))
    found = lst(conn, '""', "*")
    assert "New/Place" in found and "New/Place/kid" in found  # §6.3.6: inferiors follow
    assert "Old" not in found and "Old/kid" not in found
    assert status(conn, "New/Place", "MESSAGES")["MESSAGES"] == 1
    typ, _ = conn.rename("New/Place", "INBOX")
    assert typ == "NO"
    typ, _data = conn.rename("Nope", "Nope2")
    assert typ == "NO"


def test_rename_inbox(target: Target, clients: Clients) -> None:
    """§6.3.6: renaming INBOX moves its messages to the new name and leaves INBOX empty."""
    if "RENAME-INBOX" in target.missing:
        pytest.skip(f"{target.name} cannot rename INBOX")
    conn = clients.login(CAROL)
    for i in range(2):
        ok(conn.append("INBOX", None, None, f"Subject: inbox {i}\r\n\r\nhi\r\n".encode()))
    before = status(conn, "INBOX", "MESSAGES")["MESSAGES"]
    ok(conn.rename("INBOX", "Old-Inbox"))
    assert status(conn, "Old-Inbox", "MESSAGES")["MESSAGES"] == before
    assert status(conn, "INBOX", "MESSAGES")["MESSAGES"] == 0
    ok(conn.select("INBOX"))


def test_status_items(target: Target, clients: Clients) -> None:
    conn = clients.login(BOB)
    ok(conn.create("St"))
    sizes = []
    for i, flags in enumerate(["(\\Seen)", "(\\Deleted \\Seen)", None, "(\\Deleted)"]):
        msg = f"Subject: status {i}\r\n\r\n{'x' * (10 * i)}\r\n".encode()
        sizes.append(len(msg))
        ok(conn.append("St", flags, None, msg))
    caps = capabilities(conn)
    items = "MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT"
    st = status(conn, "St", items)
    assert st["MESSAGES"] == 4 and st["UNSEEN"] == 2 and st["UIDNEXT"] > 4 and st["UIDVALIDITY"] > 0
    assert st["RECENT"] == 4  # IMAP4rev1: nobody has selected it yet
    if has_cap(target, caps, "IMAP4rev2"):
        st2 = status(conn, "St", "DELETED SIZE")
        assert st2 == {"DELETED": 2, "SIZE": sum(sizes)}
    elif has_cap(target, caps, "STATUS=SIZE"):
        assert status(conn, "St", "SIZE")["SIZE"] == sum(sizes)
    typ, _data = conn.status("No/Such", "(MESSAGES)")
    assert typ == "NO"
    ok(conn.select("St"))
    assert int(untagged(conn, "UIDVALIDITY")[0]) == st["UIDVALIDITY"]
    assert int(untagged(conn, "UIDNEXT")[0]) == st["UIDNEXT"]
    with pytest.raises(imaplib.IMAP4.error):
        conn.status("St", "(BOGUS)")
