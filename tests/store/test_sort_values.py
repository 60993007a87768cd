"""Store.sort_values (IMAP's cached SORT orders): the same order as Store.sort, with the sort
values, compared as Python compares them, and the messages from a UID on."""

from __future__ import annotations

from itertools import pairwise

import pytest

from courriel.store.api import INBOX, All, SortKey
from tests.conftest import StoreRunner

MESSAGES = [  # (From, Subject, Date, body padding)
    ("Zed <zed@example.test>", "Re: Budget", "Tue, 02 Jan 2024 10:00:00 +0000", 300),
    ("amy@example.test", "budget", "Wed, 03 Jan 2024 10:00:00 +0000", 0),
    ("Bob <bob@example.test>", "[fwd: Agenda]", "Mon, 01 Jan 2024 10:00:00 +0000", 100),
    ("Émile <emile@example.test>", "Ärger", "Tue, 02 Jan 2024 10:00:00 +0000", 0),
    ("amy@example.test", "Agenda (fwd)", "Thu, 04 Jan 2024 10:00:00 +0000", 100),
]

CRITERIA = [
    [SortKey("subject")],
    [SortKey("date")],
    [SortKey("arrival", True)],
    [SortKey("from"), SortKey("size", True)],
    [SortKey("displayfrom")],
    [SortKey("to"), SortKey("cc"), SortKey("displayto")],
    [SortKey("subject", True), SortKey("date")],
]


def _fill(runner: StoreRunner) -> int:
    s = runner.store
    runner.run(s.add_domain("example.test"))
    user = runner.run(s.add_user("alice@example.test", "pw"))
    inbox = runner.run(s.get_mailbox(user.id, INBOX))
    assert inbox is not None
    for sender, subject, date, pad in MESSAGES:
        data = f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: {date}\r\n\r\n{'x' * pad}.\r\n"
        runner.run(s.append(inbox.id, data.encode()))
    return inbox.id


@pytest.mark.parametrize("keys", CRITERIA, ids=lambda k: " ".join(("-" if s.reverse else "") + s.name for s in k))
def test_sort_values_follow_sort(runner: StoreRunner, keys: list[SortKey]) -> None:
    box = _fill(runner)
    rows = runner.run(runner.store.sort_values(box, keys))
    assert rows is not None
    assert [r[0] for r in rows] == runner.run(runner.store.sort(box, keys, All()))
    assert all(len(r) == len(keys) + 1 and all(isinstance(v, int | str) for v in r) for r in rows)
    # The values order the rows as the store did (Python's comparison: code points).
    for a, b in pairwise(rows):
        for k, (x, y) in enumerate(zip(a[1:], b[1:], strict=True)):
            if x != y:
                assert (x > y) if keys[k].reverse else (x < y)  # type: ignore[operator]
                break
        else:
            assert int(a[0]) < int(b[0])  # ties by UID
    tail = runner.run(runner.store.sort_values(box, keys, 4))
    assert tail == [r for r in rows if int(r[0]) >= 4]


def test_sort_values_know_the_keys(runner: StoreRunner) -> None:
    box = _fill(runner)
    rows = runner.run(runner.store.sort_values(box, [SortKey("subject"), SortKey("size")]))
    assert rows is not None
    by_uid = {r[0]: r[1:] for r in rows}
    assert by_uid[1][0] == by_uid[2][0] == "budget"  # RFC 5256 base subject
    assert by_uid[3][0] == by_uid[5][0] == "agenda"
    assert by_uid[1][1] > by_uid[2][1]  # type: ignore[operator]
    with pytest.raises(ValueError):
        runner.run(runner.store.sort_values(box, [SortKey("nope")]))
