"""A stored message's journey: the five steps of its trip, from what the message and the
transcripts show.

① submission by the sender's client to its MTA: the oldest ``Received`` field written with
an authenticated protocol (``ESMTPA``/``ESMTPSA``, RFC 3848) or courriel's
``(authenticated as ...)`` comment; ② each MTA-to-MTA hop: the other ``Received`` fields,
oldest first (RFC 5321 §4.4), with their TLS comment; ③ local delivery on this server: the
mailbox, the message's internal date and the Authentication-Results it got (RFC 8601), with
the mailboxes and Sieve actions of its "delivered" message event (courriel.trace.events);
④ POP3 and ⑤ IMAP retrievals: the "retrieved" message events (every session, traced or
not), plus sessions of the user recorded in the transcripts (courriel.trace) whose server
lines carry this message's header (the transcripts keep the header section of each fetched
message); an event links to the transcript of its session when there is one. A hop links to
its transcript when one of this server's transcripts shows its ``queued as ID`` reply.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from courriel.mime import parse_message, unfold
from courriel.store.api import MessageEvent
from courriel.trace.explain import parse_authentication_results

CIRCLED = {1: "①", 2: "②", 3: "③", 4: "④", 5: "⑤"}
_CLAUSE = re.compile(r"\b(from|by|via|with|id|for)\s+(\S+)", re.I)


def parse_received(value: str) -> dict[str, Any]:
    """A Received field's clauses (RFC 5321 §4.4), its date and courriel's TLS/auth comments."""
    text = unfold(value).strip()
    head, _, date_text = text.rpartition(";")
    if not head:
        head, date_text = text, ""
    out: dict[str, Any] = {}
    stripped = re.sub(r"\([^()]*\)", " ", head)
    for key, val in _CLAUSE.findall(stripped):
        out.setdefault(key.lower(), val.strip("<>;"))
    m = re.search(r"\(\[?([0-9A-Fa-f:.]+)\]?\)|\[([0-9A-Fa-f:.]+)\]", head)
    if m:
        out["ip"] = m.group(1) or m.group(2)
    tls = re.search(r"\(using (\S+)(?: with cipher (\S+))?\)", head)
    if tls:
        out["tls"] = tls.group(1) + (f" {tls.group(2)}" if tls.group(2) else "")
    elif re.search(r"\bwith\s+\S*S(A)?\b", stripped, re.I) or "TLS" in head:
        out["tls"] = "TLS"
    auth = re.search(r"\(authenticated as ([^)\s]+)\)", head)
    if auth:
        out["auth"] = auth.group(1)
    parsed = email.utils.parsedate_to_datetime(date_text.strip()) if date_text.strip() else None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    out["date"] = parsed
    return out


def _is_submission(r: dict[str, Any]) -> bool:
    proto = str(r.get("with", "")).upper()
    return bool(r.get("auth")) or proto in ("ESMTPA", "ESMTPSA", "UTF8SMTPA", "UTF8SMTPSA")  # RFC 3848, 6531


@dataclass
class Transcripts:
    """The transcripts of a data directory, read once (first event, user, text)."""

    root: Path

    def sessions(self) -> list[tuple[Path, list[dict[str, Any]]]]:
        out = []
        for path in sorted(self.root.glob("*/*.jsonl")):
            try:
                entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
            except (OSError, ValueError):
                continue
            if entries:
                out.append((path, entries))
        return out


def _listener(entries: list[dict[str, Any]]) -> str:
    return str(entries[0]["text"]).split(" ", 1)[0]


def _client(entries: list[dict[str, Any]]) -> str:
    m = re.search(r"client (\S+?),", str(entries[0]["text"]))
    return m.group(1) if m else ""


#: Slack (seconds) when matching an event's time with a transcript's span.
_SLACK = 2.0


def build(
    data: bytes,
    address: str,
    mailbox: str,
    internal_date: datetime,
    traces: Path | None,
    events: Sequence[MessageEvent] = (),
) -> dict[str, Any]:
    parsed = parse_message(data)
    message_id = parsed.message_id or ""
    received = [parse_received(v) for n, v in parsed.headers if n.lower() == "received"]
    received.reverse()  # oldest first: each MTA prepends its own (RFC 5321 §4.4)
    sessions = Transcripts(traces).sessions() if traces is not None and traces.is_dir() else []
    steps: list[dict[str, Any]] = []
    for r in received:
        kind = 1 if not steps and _is_submission(r) else 2
        step: dict[str, Any] = {
            "step": kind,
            "title": "submission to the sender's MTA" if kind == 1 else "MTA to MTA hop",
            "time": r["date"],
            "from": r.get("from", ""),
            "ip": r.get("ip", ""),
            "by": r.get("by", ""),
            "protocol": r.get("with", ""),
            "id": r.get("id", ""),
            "tls": r.get("tls"),
            "auth": r.get("auth"),
            "for": r.get("for", ""),
            "transcript": None,
        }
        if step["id"]:
            needle = f"queued as {step['id']}"
            for path, entries in sessions:
                if any(e["dir"] == "s" and needle in e["text"] for e in entries):
                    step["transcript"] = str(path)
                    break
        steps.append(step)
    results = []
    for name, value in parsed.headers:
        if name.lower() == "authentication-results":
            ar = parse_authentication_results(value)
            results += [f"{x['method']}={x['result']}" for x in ar["results"]]
    delivered = next((e for e in events if e.kind == "delivered"), None)
    step3: dict[str, Any] = {
        "step": 3,
        "title": "local delivery",
        "time": internal_date,
        "by": received[-1].get("by", "") if received else "",
        "mailbox": mailbox,
        "recipient": address,
        "authentication": results,
        "transcript": None,
    }
    if delivered is not None:
        boxes = [str(m) for m in delivered.details.get("mailboxes", [])]
        step3["mailboxes"] = boxes
        step3["actions"] = [str(a) for a in delivered.details.get("actions", [])]
        step3["junk"] = delivered.details.get("junk")
        if boxes:
            step3["mailbox"] = boxes[0]
        if mailbox not in boxes:
            step3["now_in"] = mailbox  # moved since
    steps.append(step3)
    traced: list[dict[str, Any]] = []
    if message_id:
        pattern = re.compile(rf"^message-id:\s*<?{re.escape(message_id)}>?\s*$", re.I)
        for path, entries in sessions:
            listener = _listener(entries)
            if not listener.startswith(("imap", "pop3")):
                continue
            users = [e["text"] for e in entries if e["dir"] == "event" and "authenticated as " in e["text"]]
            if not any(address.lower() in u.lower() for u in users):
                continue
            hit = next((e for e in entries if e["dir"] == "s" and pattern.match(e["text"])), None)
            if hit is None:
                continue
            pop = listener.startswith("pop3")
            traced.append({
                "step": 4 if pop else 5,
                "title": f"retrieval by {'POP3' if pop else 'IMAP'}",
                "time": datetime.fromtimestamp(float(hit["t"]), UTC),
                "protocol": "POP3" if pop else "IMAP",
                "client": _client(entries),
                "tls": next((e["text"] for e in entries if e["dir"] == "event" and e["text"].startswith("TLS")), None),
                "transcript": str(path),
                "span": (float(entries[0]["t"]), float(entries[-1]["t"])),
            })
    for e in events:
        if e.kind != "retrieved" or e.protocol not in ("POP3", "IMAP", "JMAP", "webmail"):  # JMAP, webmail: ⑤
            continue
        pop = e.protocol == "POP3"
        step = {
            "step": 4 if pop else 5,
            "title": f"retrieval by {e.protocol}",
            "time": datetime.fromtimestamp(e.time, UTC),
            "protocol": e.protocol,
            "client": e.client,
            "peek": bool(e.details.get("peek")),
            "part": str(e.details.get("part", "")),  # webmail: a part ("raw": the whole message) downloaded
            "tls": None,
            "transcript": None,
        }
        # The transcript of the same session, when it was traced: same protocol and client,
        # the event's time within the recorded span.
        for t in traced:
            lo, hi = t["span"]
            if t["protocol"] == e.protocol and t["client"] == e.client and lo - _SLACK <= e.time <= hi + _SLACK:
                step["tls"], step["transcript"] = t["tls"], t["transcript"]
                traced.remove(t)
                break
        steps.append(step)
    for e in events:
        if e.kind != "relayed":
            continue
        # Step ② as the relaying courriel saw it: the MX its DNS lookup chose, TLS, the reply.
        steps.append({
            "step": 2,
            "title": "relayed to the recipient's MX",
            "time": datetime.fromtimestamp(e.time, UTC),
            "from": "", "ip": "", "by": str(e.details.get("mx", "")), "protocol": "ESMTP",
            "id": str(e.details.get("queue_id", "")), "tls": "TLS" if e.details.get("tls") else None,
            "auth": None, "for": ", ".join(str(r) for r in e.details.get("recipients", [])),
            "mx": str(e.details.get("mx", "")), "reply": str(e.details.get("reply", "")),
            "transcript": None,
        })  # fmt: skip
    for t in traced:  # traced sessions from before the events were recorded
        del t["span"]
        steps.append(t)
    order = {id(s): i for i, s in enumerate(steps)}
    steps[len(received) + 1 :] = sorted(steps[len(received) + 1 :], key=lambda s: (s["time"], order[id(s)]))
    previous: datetime | None = None
    for s in steps:
        t = s["time"]
        s["delay"] = (t - previous).total_seconds() if t is not None and previous is not None else None
        previous = t or previous
        s["time"] = t.isoformat() if t is not None else None
    return {"message_id": message_id, "subject": parsed.subject or "", "address": address, "steps": steps}


def render(journey: dict[str, Any], console: Any) -> None:
    """The timeline in the terminal, with rich."""
    from rich.markup import escape

    console.print(f"[bold]Journey of <{escape(journey['message_id'])}>[/] {escape(journey['subject'])}")
    for s in journey["steps"]:
        if s.get("delay") is not None:
            console.print(f"   [dim]│  +{duration_text(s['delay'])}[/]")
            console.print("   [dim]▼[/]")
        when = s["time"].replace("T", " ")[:19] if s["time"] else "time unknown"
        console.print(f" [bold cyan]{CIRCLED[s['step']]}[/] [bold]{s['title']}[/]  [green]{when}[/]")
        for line in step_details(s):
            console.print(f"     {escape(line)}")
        if s.get("transcript"):
            console.print(f"     [magenta]transcript: {escape(s['transcript'])}[/]")


def step_details(s: dict[str, Any]) -> list[str]:
    out = []
    if s["step"] in (1, 2):
        ip = f" [{s['ip']}]" if s.get("ip") and s["ip"] not in str(s["from"]) else ""
        out.append(f"from {s['from'] or '?'}{ip} to {s['by'] or '?'}")
        bits = [s.get("protocol") or "?"]
        tls = s.get("tls")
        bits.append(("" if str(tls).startswith("TLS") else "TLS ") + str(tls) if tls else "no TLS")
        if s.get("auth"):
            bits.append(f"authenticated as {s['auth']}")
        if s.get("id"):
            bits.append(f"id {s['id']}")
        out.append(", ".join(str(b) for b in bits))
        if s.get("mx"):
            out.append(f"MX {s['mx']} for {s.get('for') or '?'}: {s.get('reply') or ''}".rstrip(": "))
    elif s["step"] == 3:
        boxes = ", ".join(s.get("mailboxes") or [s["mailbox"]])
        out.append(f"into {s['recipient']}'s mailbox {boxes}" + (f" on {s['by']}" if s.get("by") else ""))
        if s.get("actions"):
            out.append("actions: " + "; ".join(s["actions"]) + (" (judged junk)" if s.get("junk") else ""))
        if s.get("now_in"):
            out.append(f"now in {s['now_in']}")
        if s.get("authentication"):
            out.append("checks: " + " ".join(s["authentication"]))
    else:
        peek = " (peek)" if s.get("peek") else ""
        out.append(f"{s['protocol']}{peek} client {s.get('client') or '?'}" + (f", {s['tls']}" if s.get("tls") else ""))
        if s.get("part"):
            out.append("downloaded " + ("the message" if s["part"] == "raw" else f"part {s['part']}"))
    return out


def duration_text(seconds: float) -> str:
    if seconds < 0:
        return f"{seconds:.1f} s (clock skew)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
