"""Readable output with rich: folder listings, messages, attachment lists, progress bars.

Text from messages is printed with markup and highlighting off, so "[b]" in a subject
is shown as written. ``--json`` output (for scripts) bypasses rich entirely.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from .imap import Folder, Summary
from .message import MessageView

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

_FLAG_LETTERS = (("\\Seen", "", "N"), ("\\Answered", "r", ""), ("\\Flagged", "!", ""),
                 ("\\Deleted", "D", ""), ("\\Draft", "d", ""), ("$Forwarded", "f", ""))  # fmt: skip


def flag_letters(flags: Sequence[str]) -> str:
    """mutt-style: N new (unseen), r answered, ! flagged, D deleted, d draft, f forwarded."""
    present = {f.casefold() for f in flags}
    out = ""
    for name, if_set, if_unset in _FLAG_LETTERS:
        out += if_set if name.casefold() in present else if_unset
    return out


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" or size >= 10 else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n")


def summaries_table(title: str, items: Sequence[Summary], footer: str = "") -> None:
    table = Table(title=title, caption=footer or None, expand=False, show_lines=False)
    table.add_column("UID", justify="right", style="cyan", no_wrap=True)
    table.add_column("Flags", no_wrap=True)
    table.add_column("Date", no_wrap=True)
    table.add_column("From", overflow="fold", max_width=30)
    table.add_column("Subject", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    for s in items:
        style = "bold" if "\\Seen" not in s.flags else ""
        table.add_row(
            str(s.uid), flag_letters(s.flags),
            s.date.strftime("%Y-%m-%d %H:%M") if s.date else "",
            Text(s.sender), Text(s.subject), human_size(s.size), style=style,
        )  # fmt: skip
    console.print(table)


def summaries_json(items: Sequence[Summary]) -> list[dict[str, object]]:
    return [
        {"uid": s.uid, "date": s.date.isoformat() if s.date else None, "from": s.sender, "to": s.to,
         "subject": s.subject, "flags": list(s.flags), "size": s.size}
        for s in items
    ]  # fmt: skip


def folders_table(items: Sequence[Folder]) -> None:
    table = Table(title="Folders")
    table.add_column("Name", overflow="fold")
    table.add_column("Attributes")
    table.add_column("Subscribed", justify="center")
    for f in items:
        table.add_row(Text(f.name), " ".join(f.flags), "yes" if f.subscribed else "")
    console.print(table)


def message(v: MessageView) -> None:
    p = v.parsed

    def people(items: list[tuple[str, str]]) -> str:
        return ", ".join(f"{n} <{a}>" if n else a for n, a in items)

    for label, value in (
        ("Date", p.date.strftime("%a, %d %b %Y %H:%M:%S %z") if p.date else ""),
        ("From", people(p.from_)),
        ("To", people(p.to)),
        ("Cc", people(p.cc)),
        ("Reply-To", people(p.reply_to)),
        ("Subject", p.subject or ""),
    ):
        if value:
            console.print(Text.assemble((f"{label}: ", "bold"), value))
    if v.from_html:
        console.print(Text("[HTML part shown as text]", style="dim"))
    console.print()
    console.print(Text(v.text), end="" if v.text.endswith("\n") else "\n")
    if v.attachments:
        console.print()
        attachments(v)


def attachments(v: MessageView) -> None:
    table = Table(title="Attachments", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Name", overflow="fold")
    table.add_column("Type")
    table.add_column("Size", justify="right")
    for a in v.attachments:
        size = len(v.attachment_data(a))
        table.add_row(str(a.index), Text(a.filename or "(no name)"), a.mime_type, human_size(size))
    console.print(table)


class TransferProgress:
    """A progress bar over messages and octets (a Reporter for ``fetch``); silent when
    output is not a terminal."""

    def __init__(self, label: str) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
            console=errors, transient=True, disable=not errors.is_terminal,
        )  # fmt: skip
        self.label = label
        self.task: TaskID | None = None
        self.total = 0
        self.done = 0

    def __enter__(self) -> TransferProgress:
        self.progress.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def start(self, messages: int, octets: int) -> None:
        self.total = messages
        self.task = self.progress.add_task(f"{self.label} 0/{messages}", total=octets or None)

    def advance(self, octets: int) -> None:
        self.done += 1
        if self.task is not None:
            self.progress.update(self.task, advance=octets, description=f"{self.label} {self.done}/{self.total}")
