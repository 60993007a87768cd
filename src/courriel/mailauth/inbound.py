"""The checks of mail arriving on the MX: SPF, DKIM, DMARC, and the verdict.

The result is written into an ``Authentication-Results`` field (RFC 8601) prepended to
the stored message; fields that claim our own authserv-id are removed from the message
first (RFC 8601 §5: they could only be forged). DMARC p=reject gets 550 5.7.1, p=quarantine
sends the message to Junk; mail whose From claims a local domain without a DMARC pass is
refused when ``mailauth.reject_local_spoof`` is on.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from courriel.config import MailauthSection
from courriel.mailauth import dkim, dmarc, spf
from courriel.mime.address import parse_addresses
from courriel.mime.headers import scan_header
from courriel.queue.dns import Dns


@dataclass(frozen=True, slots=True)
class Verdict:
    header: bytes  # the Authentication-Results field, CRLF terminated
    message: bytes  # the message with forged Authentication-Results fields removed
    reject: str | None = None  # the text of a 550 5.7.1
    quarantine: bool = False


def from_domain(header: bytes) -> str | None:
    """The domain of the single From address (RFC 7489 §6.6.1), or None."""
    fields, _ = scan_header(header, 0, len(header))
    froms = [raw for name, raw in fields if name.lower() == "from"]
    if len(froms) != 1:
        return None
    addresses = [addr for _, addr in parse_addresses(froms[0])]
    domains = {a.rpartition("@")[2].lower() for a in addresses if "@" in a}
    return domains.pop() if len(domains) == 1 else None


def _strip_ours(message: bytes, authserv_id: str) -> bytes:
    end = message.find(b"\r\n\r\n")
    if end < 0 or b"uthentication-" not in message[:end]:
        return message
    header, body = message[: end + 2], message[end + 2 :]
    pattern = re.compile(
        rb"(?im)^Authentication-Results:[ \t]*" + re.escape(authserv_id.encode()) + rb"\b.*\r\n(?:[ \t].*\r\n)*"
    )
    return pattern.sub(b"", header) + body


def _clean(value: str) -> str:
    return re.sub(r"[^\w.@+=-]", "", value)[:200] or "unknown"


class InboundChecker:
    def __init__(self, cfg: MailauthSection, resolver: Dns, authserv_id: str,
                 is_local: Callable[[str], Awaitable[bool]]) -> None:  # fmt: skip
        self.cfg = cfg
        self.dns = resolver
        self.authserv_id = authserv_id
        self.is_local = is_local
        spf.use_dns(resolver)

    async def check(self, message: bytes, ip: str, helo: str, mail_from: str) -> Verdict:
        end = message.find(b"\r\n\r\n")
        header = message[: end + 2] if end >= 0 else message
        spf_result = await asyncio.to_thread(spf.check, ip, mail_from, helo)
        dkim_results = await asyncio.to_thread(dkim.verify, message, self.dns.txt_sync)
        domain = from_domain(header)
        dmarc_result = await dmarc.evaluate(domain, spf_result, dkim_results, self.dns.txt)
        parts = [f"spf={spf_result.result} smtp.{spf_result.identity}={_clean(spf_result.domain if spf_result.identity == 'helo' else mail_from)}"]
        for d in dkim_results:
            if d.result == "none":
                parts.append("dkim=none")
            else:
                reason = f' reason="{_clean(d.reason)}"' if d.reason and d.result != "pass" else ""
                parts.append(f"dkim={d.result}{reason} header.d={_clean(d.domain or '')} header.s={_clean(d.selector or '')}"
                             f" header.a={_clean(d.algorithm or '')}")  # fmt: skip
        parts.append(f"dmarc={dmarc_result.result} (p={dmarc_result.policy}) header.from={_clean(domain or '')}")
        field = f"Authentication-Results: {self.authserv_id};\r\n\t" + ";\r\n\t".join(parts) + "\r\n"
        verdict_reject: str | None = None
        quarantine = False
        if self.cfg.enforce_dmarc and dmarc_result.result == "fail":
            if dmarc_result.policy == "reject":
                verdict_reject = f"DMARC policy of {domain} rejects this message (RFC 7489)"
            elif dmarc_result.policy == "quarantine":
                quarantine = True
        if (
            verdict_reject is None
            and self.cfg.reject_local_spoof
            and domain is not None
            and dmarc_result.result != "pass"
            and await self.is_local(domain)
        ):
            verdict_reject = f"From claims the local domain {domain} without authentication"
        return Verdict(field.encode("utf-8"), _strip_ours(message, self.authserv_id), verdict_reject, quarantine)
