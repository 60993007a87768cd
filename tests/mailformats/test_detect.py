"""detect_format and count_messages: what the import CLI calls first."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel.mailformats import MaildirWriter, MailItem, count_messages, detect_format

FROM = b"From a@b Sun Nov 29 00:02:06 2026\n"


def test_maildir(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    (tmp_path / "new").mkdir()
    assert detect_format(tmp_path) == "maildir"  # tmp/ is optional
    assert count_messages(tmp_path) == 0
    with MaildirWriter(tmp_path, fsync=False) as writer:
        for _ in range(3):
            writer.write(MailItem(b"x\r\n"))
    assert count_messages(str(tmp_path)) == 3


@pytest.mark.parametrize(
    ("content", "count"), [(b"", 0), (FROM, 1), (FROM + b"\n" + FROM + b"x\n\n", 2)]
)
def test_mbox(tmp_path: Path, content: bytes, count: int) -> None:
    path = tmp_path / "box"
    path.write_bytes(content)
    assert detect_format(path) == "mbox"
    assert count_messages(path) == count


def test_neither(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    with pytest.raises(ValueError, match="not a Maildir"):
        detect_format(tmp_path)
    (tmp_path / "f").write_bytes(b"Subject: hi\n")
    with pytest.raises(ValueError, match="neither a Maildir nor an mbox"):
        detect_format(tmp_path / "f")
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "missing")
