"""Maildir: names, info flags, dovecot-keywords, delivery, order, dates, odd files."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.mailformats import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    FORWARDED,
    SEEN,
    MaildirWriter,
    MailItem,
    count_maildir,
    read_maildir,
)
from courriel.mailformats.maildir import (
    delivery_key,
    format_dovecot_keywords,
    info_letters,
    parse_dovecot_keywords,
    parse_info,
)

D = datetime(2026, 11, 29, 0, 2, 6, tzinfo=UTC)
KW = {"a": "$Junk", "b": "work", "z": "last"}
NAME = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^,:/]+),S=(\d+),W=(\d+)(:2,[A-Za-z]*)?$")


@pytest.mark.parametrize(
    ("name", "flags", "keywords"),
    [
        ("1.M1P1.h:2,S", {SEEN}, set()),
        ("1.M1P1.h:2,DFPRST", {DRAFT, FLAGGED, ANSWERED, SEEN, DELETED}, {FORWARDED}),
        ("1.M1P1.h:2,Sabz", {SEEN}, {"$Junk", "work", "last"}),
        ("1.M1P1.h:2,Sc", {SEEN}, set()),  # c: not in dovecot-keywords
        ("1.M1P1.h:2,XYZ", set(), set()),  # unknown upper-case letters
        ("1.M1P1.h:2,", set(), set()),
        ("1.M1P1.h:1,S", set(), set()),  # experimental info 1: not flags
        ("1.M1P1.h,S=12", set(), set()),
        ("1.M1P1.h\\0723:2,R", {ANSWERED}, set()),
    ],
)
def test_parse_info(name: str, flags: set[str], keywords: set[str]) -> None:
    assert parse_info(name, KW) == (frozenset(flags), frozenset(keywords))


def test_info_letters_are_sorted() -> None:
    flags = frozenset({SEEN, DRAFT, "\\Recent", FLAGGED})
    assert info_letters(flags, {"$Junk": "a", "$Forwarded": "P"}) == "DFPSa"
    assert info_letters(frozenset(), {}) == ""


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (
            "1700000000.M123456P42Q7.host:2,S",
            (1700000000, 123456, "1700000000.M123456P42Q7.host:2,S"),
        ),
        ("1700000000.12345_6.host", (1700000000, 0, "1700000000.12345_6.host")),
        (
            "1700000000.M5P1V00000803I0012_0.h,S=5",
            (1700000000, 5, "1700000000.M5P1V00000803I0012_0.h,S=5"),
        ),
        ("msg-without-time", None),
    ],
)
def test_delivery_key(name: str, key: tuple[int, int, str] | None) -> None:
    assert delivery_key(name) == key


def test_dovecot_keywords_file() -> None:
    text = b"0 $Junk\n1 work\n25 last\n26 too-far\nx bad\n3 has space\n\n"
    assert parse_dovecot_keywords(text) == {"a": "$Junk", "b": "work", "z": "last"}
    assert format_dovecot_keywords(KW) == b"0 $Junk\n1 work\n25 last\n"


def test_write_then_read(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    items = [
        MailItem(b"Subject: 1\r\n\r\nbody\r\n", None, D),
        MailItem(b"Subject: 2\r\n\r\n", None, D, frozenset({SEEN, FLAGGED}), frozenset({"$Junk"})),
        MailItem(b"Return-Path: <bob@example.org>\r\n\r\n", None, None, frozenset({ANSWERED}),
                 frozenset({FORWARDED, "work"})),
    ]  # fmt: skip
    with MaildirWriter(md) as writer:
        paths = [writer.write(item) for item in items]
    assert [p.parent.name for p in paths] == ["new", "cur", "cur"]
    for path, item in zip(paths, items, strict=True):
        m = NAME.match(path.name)
        assert m is not None, path.name
        assert path.read_bytes() == item.data.replace(b"\r\n", b"\n")  # LF on disk
        assert int(m[6]) == path.stat().st_size
        assert int(m[7]) == len(item.data)
        assert int(m[3]) == os.getpid()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert paths[1].name.endswith(":2,FSa")
    assert paths[2].name.endswith(":2,PRb")
    assert (md / "dovecot-keywords").read_bytes() == b"0 $Junk\n1 work\n"
    assert os.listdir(md / "tmp") == []

    back = list(read_maildir(md))
    assert [b.data for b in back] == [i.data for i in items]
    assert [b.flags for b in back] == [i.flags for i in items]
    assert [b.keywords for b in back] == [i.keywords for i in items]
    assert [b.envelope_from for b in back] == [None, None, "bob@example.org"]
    assert back[0].internal_date == back[1].internal_date == D
    assert back[2].internal_date is not None and back[2].internal_date > D  # now
    assert count_maildir(md) == 3


def test_existing_keywords_keep_their_letters(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    md.mkdir()
    (md / "dovecot-keywords").write_bytes(b"0 $Junk\n2 Work\n")
    with MaildirWriter(md, fsync=False) as writer:
        p1 = writer.write(MailItem(b"x\r\n", keywords=frozenset({"work", "new"})))
        p2 = writer.write(MailItem(b"x\r\n", keywords=frozenset({"$junk"})))
    assert p1.name.endswith(":2,bc") and p2.name.endswith(":2,a")
    assert (md / "dovecot-keywords").read_bytes() == b"0 $Junk\n1 new\n2 Work\n"


def test_more_than_26_keywords_are_reported(tmp_path: Path) -> None:
    many = frozenset(f"k{i:02d}" for i in range(30)) | {"bad word", "\\Custom"}
    with MaildirWriter(tmp_path / "md", fsync=False) as writer:
        path = writer.write(MailItem(b"x\r\n", keywords=many))
    (item,) = read_maildir(tmp_path / "md")
    assert len(item.keywords) == 26
    assert path.name.endswith(":2,abcdefghijklmnopqrstuvwxyz")
    assert writer.dropped_keywords == (many - item.keywords)
    assert len(writer.dropped_keywords) == 6


def test_order_is_delivery_time_then_name(tmp_path: Path) -> None:
    md = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    names = {
        "new/1000000002.M5P1.h": b"3",
        "cur/1000000002.M10P1.h:2,S": b"4",
        "cur/1000000001.M999999P1.h:2,": b"2",
        "new/1000000001.M2P1.h": b"1",
        "cur/999999999.12_1.h:2,S": b"0",  # qmail's old form: seconds only
        "new/1000000003.M0P1.a": b"5",
        "new/1000000003.M0P1.b": b"6",
        "cur/.hidden:2,S": b"no",
        "new/no-time-here": b"7",  # sorted by mtime
        "tmp/1000000000.M0P1.h": b"no",  # still being delivered
    }
    for name, content in names.items():
        (md / name).write_bytes(content)
    os.utime(md / "new/no-time-here", (2_000_000_000, 2_000_000_000))
    (md / "cur/subdir").mkdir()
    assert [i.data for i in read_maildir(md)] == [b"%d" % i for i in range(8)]
    assert count_maildir(md) == 8


def test_writer_keeps_write_order_within_a_microsecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.time_ns", lambda: 1_700_000_000_000_000_000)
    with MaildirWriter(tmp_path / "md", fsync=False) as writer:
        for i in range(20):
            writer.write(MailItem(b"%d\r\n" % i, flags=frozenset({SEEN}) if i % 2 else frozenset()))
    assert [i.data for i in read_maildir(tmp_path / "md")] == [b"%d\r\n" % i for i in range(20)]


def test_crlf_files_are_not_doubled(tmp_path: Path) -> None:
    md = tmp_path / "md"
    for sub in ("cur", "new"):
        (md / sub).mkdir(parents=True)
    (md / "new" / "1.M1P1.h").write_bytes(b"Subject: x\r\n\r\nmixed\nends\r\n")
    (item,) = read_maildir(md)
    assert item.data == b"Subject: x\r\n\r\nmixed\r\nends\r\n"


def test_a_file_moved_while_reading_is_followed(tmp_path: Path) -> None:
    md = tmp_path / "md"
    with MaildirWriter(md, fsync=False) as writer:
        p1 = writer.write(MailItem(b"1\r\n"))
        p2 = writer.write(MailItem(b"2\r\n"))
        p3 = writer.write(MailItem(b"3\r\n"))
    it = read_maildir(md)
    assert next(it).data == b"1\r\n"
    p2.rename(md / "cur" / (p2.name + ":2,ST"))  # another client read and deleted it
    p3.unlink()  # another client expunged it
    second = next(it)
    assert second.data == b"2\r\n"
    assert second.flags == {SEEN, DELETED}
    assert list(it) == []
    assert p1.exists()


def test_no_hard_links_falls_back_to_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    with MaildirWriter(tmp_path / "md", fsync=False) as writer:
        paths = [writer.write(MailItem(b"%d\r\n" % i, flags=frozenset({SEEN}))) for i in range(3)]
    assert all(p.exists() for p in paths)
    assert os.listdir(tmp_path / "md" / "tmp") == []


def test_a_taken_name_is_never_overwritten(tmp_path: Path) -> None:
    class SameNameTwice(MaildirWriter):
        calls = 0

        def _unique_base(self) -> str:
            self.calls += 1
            return "1700000000.M0P1Q1.h" if self.calls <= 3 else super()._unique_base()

    with SameNameTwice(tmp_path / "md", fsync=False) as writer:
        a = writer.write(MailItem(b"a\r\n", flags=frozenset({SEEN})))
        b = writer.write(MailItem(b"b\r\n", flags=frozenset({SEEN})))
    assert a != b and a.read_bytes() == b"a\n" and b.read_bytes() == b"b\n"


def test_fsync_path_and_existing_folder(tmp_path: Path) -> None:
    md = tmp_path / "md"
    with pytest.raises(ValueError, match="not a Maildir"):
        MaildirWriter(md, create=False)
    with MaildirWriter(md, fsync=True) as writer:
        path = writer.write(MailItem(b"x\r\n", None, D, frozenset({SEEN}), frozenset({"k"})))
    with MaildirWriter(md, create=False) as writer:
        writer.write(MailItem(b"y\r\n"))
    assert path.exists() and count_maildir(md) == 2


def test_read_rejects_non_maildir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Maildir"):
        list(read_maildir(tmp_path))
