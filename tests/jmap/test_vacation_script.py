"""The Sieve script a VacationResponse becomes (courriel.jmap.vacation.generate), pure: any
subject and body text survive the quoting (the interpreter reads them back exactly), the
date window is exact at its edges, the script holds nothing but the vacation (no filing of
its own), and a disabled one keeps the object with no action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from courriel.jmap.vacation import generate, stored_state
from courriel.sieve.interpreter import evaluate
from courriel.sieve.message import Envelope
from courriel.sieve.validate import compile_script

MESSAGE = b"From: x@remote.example\r\nTo: carol@example.test\r\nSubject: a list post\r\n\r\nhi\r\n"
ENVELOPE = Envelope("x@remote.example", "carol@example.test", "carol@example.test")


def run(obj: dict[str, Any], now: datetime) -> Any:
    text = generate(obj, 5, ["carol@example.test"])
    assert stored_state(text) == obj
    return evaluate(compile_script(text), MESSAGE, ENVELOPE, now=now)


BASE: dict[str, Any] = {"isEnabled": True, "fromDate": None, "toDate": None, "subject": None, "textBody": None,
                        "htmlBody": None}  # fmt: skip
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    ['plain', 'a "quoted" word', "back\\slash \\\" mix", "two\nlines\r\nand CRLF", "text:\n.\n.\n", "*/ /* # ;}",
     "ünïcödé ✈", "", 'ends with backslash\\'],
)  # fmt: skip
def test_text_round_trips(text: str) -> None:
    out = run({**BASE, "subject": text, "textBody": text}, NOW)
    assert out.vacation is not None
    assert out.vacation.reason == text and out.vacation.subject == text
    assert out.vacation.days == 5 and not out.vacation.mime and out.vacation.addresses == ("carol@example.test",)


@pytest.mark.parametrize(
    ("start", "end", "now", "replies"),
    [
        ("2026-11-29T12:00:00Z", None, NOW, True),  # fromDate is inclusive
        ("2026-11-29T12:00:01Z", None, NOW, False),
        (None, "2026-11-29T12:00:01Z", NOW, True),
        (None, "2026-11-29T12:00:00Z", NOW, False),  # toDate is exclusive
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", NOW, True),
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", datetime(2026, 12, 1, 0, 30, tzinfo=UTC), False),
        # the window is in UTC whatever the zone of the clock reading
        ("2026-11-29T11:00:00Z", None, datetime.fromisoformat("2026-11-29T12:30:00+02:00"), False),
        ("2026-11-29T10:00:00Z", None, datetime.fromisoformat("2026-11-29T12:30:00+02:00"), True),
    ],
)
def test_date_window(start: str | None, end: str | None, now: datetime, replies: bool) -> None:
    out = run({**BASE, "fromDate": start, "toDate": end}, now)
    assert (out.vacation is not None) == replies


def test_only_a_vacation_and_off_means_no_action() -> None:
    out = run({**BASE, "htmlBody": "<p>away</p>", "textBody": "away"}, NOW)
    assert out.vacation is not None and out.vacation.mime
    assert "multipart/alternative" in out.vacation.reason and "<p>away</p>" in out.vacation.reason
    # Nothing but the vacation: no filing, redirect or reject (delivery ignores its implicit keep).
    assert out.fileinto == [] and out.redirects == [] and out.reject is None and not out.discarded
    off_obj = {**BASE, "isEnabled": False, "subject": "kept", "textBody": "kept too"}
    text = generate(off_obj, 5, [])
    assert "vacation :" not in text and stored_state(text) == off_obj
    off = evaluate(compile_script(text), MESSAGE, ENVELOPE, now=NOW)
    assert off.vacation is None and off.fileinto == []
    html_only = run({**BASE, "htmlBody": "<p>x</p>"}, NOW)
    assert html_only.vacation.reason.startswith("Content-Type: text/html")
