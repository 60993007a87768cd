"""SMTP TLS reporting (RFC 8460): record the TLS outcome of each MTA-STS session, send the
aggregate reports to the rua of each policy domain's ``_smtp._tls`` TXT record.

Outcomes are appended as JSON lines to ``DATA/tlsrpt/START.jsonl``, one file per report period
(``[outbound] tlsrpt_period`` seconds, a day by default, aligned to the epoch in UTC). Once a
period is over, :class:`TlsReporter` builds one report per policy domain (§4), gzips it and
mails it (§5.3: multipart/report; report-type="tlsrpt", application/tlsrpt+gzip, the
TLS-Report-Domain and TLS-Report-Submitter headers) or POSTs it (§3, https: rua), then marks
the period file sent.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import gzip
import json
import logging
import os
import re
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from courriel.queue.dns import Dns, DnsTempError
from courriel.queue.mtasts import Policy

log = logging.getLogger("courriel.outbound")

#: RFC 8460 §4.3 result types this sender produces.
RESULT_TYPES = (
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "sts-policy-fetch-error", "sts-policy-invalid",
)  # fmt: skip


def classify_tls_error(text: str) -> str:
    """The RFC 8460 §4.3 result type of a failed certificate check (from OpenSSL's message)."""
    low = text.lower()
    if "hostname mismatch" in low or "ip address mismatch" in low or "doesn't match" in low:
        return "certificate-host-mismatch"
    if "expired" in low:
        return "certificate-expired"
    if "certificate" in low:
        return "certificate-not-trusted"
    return "validation-failure"


def parse_rua(records: list[bytes]) -> list[str]:
    """The rua URIs of the ``_smtp._tls`` TXT record (RFC 8460 §3), [] without a valid one."""
    for raw in records:
        text = raw.decode("ascii", "replace").strip()
        if not re.match(r"v=TLSRPTv1\s*(;|$)", text):
            continue
        for item in text.split(";"):
            key, eq, value = item.strip().partition("=")
            if eq and key.strip() == "rua":
                return [u.strip() for u in value.split(",") if u.strip().startswith(("mailto:", "https:"))]
    return []


@dataclass(frozen=True, slots=True)
class Outcome:
    policy: Policy
    success: bool
    result_type: str = ""
    mx_host: str = ""
    receiving_ip: str = ""
    sending_ip: str = ""


class TlsRecorder:
    def __init__(self, folder: Path, period: int) -> None:
        self.folder = folder
        self.period = period

    def period_start(self, now: float) -> int:
        return int(now) // self.period * self.period

    def record(self, outcome: Outcome, now: float | None = None) -> None:
        now = time.time() if now is None else now
        p = outcome.policy
        line = {
            "domain": p.domain, "mode": p.mode, "mx": list(p.mx), "text": p.text, "success": outcome.success,
            "result": outcome.result_type, "mx_host": outcome.mx_host, "ip": outcome.receiving_ip,
            "sending_ip": outcome.sending_ip,
        }  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{self.period_start(now)}.jsonl").open("a") as fh:
            fh.write(json.dumps(line) + "\n")

    def finished(self, now: float | None = None) -> list[tuple[int, Path]]:
        """Period files whose period is over and whose reports were not sent yet."""
        now = time.time() if now is None else now
        current = self.period_start(now)
        out = []
        for path in sorted(self.folder.glob("*.jsonl")) if self.folder.exists() else []:
            if path.stem.isdigit() and int(path.stem) < current:
                out.append((int(path.stem), path))
        return out


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_reports(lines: list[dict[str, Any]], start: int, end: int, org: str, contact: str) -> dict[str, dict[str, Any]]:
    """One RFC 8460 §4 report per policy domain, from the recorded outcomes of a period."""
    by_domain: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_domain.setdefault(str(line["domain"]), []).append(line)
    reports: dict[str, dict[str, Any]] = {}
    for domain, rows in sorted(by_domain.items()):
        last = rows[-1]
        failures: Counter[tuple[str, str, str, str]] = Counter()
        ok = 0
        for row in rows:
            if row["success"]:
                ok += 1
            else:
                failures[(row["result"], row.get("sending_ip", ""), row["mx_host"], row["ip"])] += 1
        details = []
        for (result, sending, mx_host, ip), count in sorted(failures.items()):
            detail: dict[str, Any] = {"result-type": result, "failed-session-count": count}
            if sending:
                detail["sending-mta-ip"] = sending
            if mx_host:
                detail["receiving-mx-hostname"] = mx_host
            if ip:
                detail["receiving-ip"] = ip
            details.append(detail)
        lines_of_policy = [ln for ln in str(last["text"]).replace("\r\n", "\n").split("\n") if ln.strip()]
        reports[domain] = {
            "organization-name": org,
            "date-range": {"start-datetime": _iso(start), "end-datetime": _iso(end)},
            "contact-info": contact,
            "report-id": f"{_iso(start)}_{domain}_{secrets.token_hex(6)}",
            "policies": [
                {
                    "policy": {
                        "policy-type": "sts",
                        "policy-string": lines_of_policy,
                        "policy-domain": domain,
                        "mx-host": list(last["mx"]),
                    },
                    "summary": {
                        "total-successful-session-count": ok,
                        "total-failure-session-count": sum(failures.values()),
                    },
                    "failure-details": details,
                }
            ],
        }
    return reports


def build_mail(report: dict[str, Any], domain: str, submitter: str, sender: str, to: str, start: int, end: int) -> bytes:
    """The report as an email (RFC 8460 §5.3)."""
    gz = gzip.compress(json.dumps(report).encode())
    report_id = report["report-id"]
    filename = f"{submitter}!{domain}!{start}!{end}!{secrets.token_hex(4)}.json.gz"
    boundary = "tlsrpt-" + secrets.token_hex(12)
    body64 = base64.encodebytes(gz).decode("ascii").replace("\n", "\r\n")
    text = (
        f"This is an aggregate TLS report from {submitter} for {domain},\r\n"
        f"covering {_iso(start)} to {_iso(end)} (RFC 8460).\r\n"
    )
    head = (
        f"From: <{sender}>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>\r\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
        f"Message-ID: {email.utils.make_msgid(domain=submitter)}\r\n"
        f"TLS-Report-Domain: {domain}\r\n"
        f"TLS-Report-Submitter: {submitter}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type="tlsrpt";\r\n\tboundary="{boundary}"\r\n'
        "\r\n"
    )
    parts = (
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        f"{text}\r\n"
        f"--{boundary}\r\n"
        f'Content-Type: application/tlsrpt+gzip; name="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
        f"{body64}\r\n"
        f"--{boundary}--\r\n"
    )
    return (head + parts).encode("ascii")


#: enqueue(message, mail_from, [recipient]) of the outbound queue
Enqueue = Callable[[bytes, str, list[str]], Awaitable[None]]


class TlsReporter:
    """Sends the reports of finished periods (checked every few minutes)."""

    def __init__(self, recorder: TlsRecorder, dns: Dns, enqueue: Enqueue, submitter: str, sender: str,
                 ca_bundle: str = "") -> None:  # fmt: skip
        self.recorder = recorder
        self.dns = dns
        self.enqueue = enqueue
        self.submitter = submitter
        self.sender = sender
        self.ca_bundle = ca_bundle

    async def run(self) -> None:
        interval = max(1, min(self.recorder.period // 4, 300))
        while True:
            try:
                await self.send_due()
            except Exception:
                log.exception("outbound: TLS reports failed")
            await asyncio.sleep(interval)

    async def send_due(self, now: float | None = None) -> int:
        """Send the reports of every finished period; returns how many went out."""
        sent = 0
        for start, path in self.recorder.finished(now):
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            end = start + self.recorder.period
            reports = build_reports(lines, start, end, self.submitter, f"mailto:{self.sender}")
            for domain, report in reports.items():
                try:
                    rua = parse_rua(await self.dns.txt(f"_smtp._tls.{domain}"))
                except DnsTempError as exc:
                    log.info("outbound: TLS report for %s postponed: %s", domain, exc)
                    return sent  # keep the file: the next round tries again
                for uri in rua:
                    if await self._send(uri, report, domain, start, end):
                        sent += 1
            os.replace(path, path.with_suffix(".sent"))
        return sent

    async def _send(self, uri: str, report: dict[str, Any], domain: str, start: int, end: int) -> bool:
        if uri.startswith("mailto:"):
            to = uri[len("mailto:") :].split("?")[0].split("!")[0].strip()
            if "@" not in to:
                return False
            mail = build_mail(report, domain, self.submitter, self.sender, to, start, end)
            await self.enqueue(mail, self.sender, [to])
            log.info("outbound: TLS report for %s queued to <%s>", domain, to)
            return True
        try:
            verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else True
            async with httpx.AsyncClient(verify=verify, timeout=30.0, follow_redirects=False) as http:
                resp = await http.post(uri, content=gzip.compress(json.dumps(report).encode()),
                                       headers={"Content-Type": "application/tlsrpt+gzip"})  # fmt: skip
            if resp.status_code >= 300:
                log.warning("outbound: TLS report for %s to %s: HTTP %d", domain, uri, resp.status_code)
                return False
        except httpx.HTTPError as exc:
            log.warning("outbound: TLS report for %s to %s: %s", domain, uri, exc)
            return False
        return True
