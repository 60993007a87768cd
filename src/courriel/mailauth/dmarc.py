"""DMARC (RFC 7489): the policy record, identifier alignment and the verdict.

The organizational domain (§3.2) is approximated by the last two labels (three when the
second-level label is a common public-suffix label such as ``co`` or ``com`` under a
two-letter country code): no public suffix list is shipped.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from courriel.mailauth.dkim import DkimResult
from courriel.mailauth.spf import SpfResult

_SECOND_LEVEL = {"co", "com", "net", "org", "ac", "gov", "edu", "ne", "or"}


def organizational_domain(domain: str) -> str:
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


@dataclass(frozen=True, slots=True)
class Record:
    p: str  # none, quarantine, reject
    sp: str | None
    adkim: str  # r or s
    aspf: str
    pct: int


def parse_record(text: str) -> Record | None:
    """RFC 7489 §6.3; None when it is not a DMARC record or lacks a valid ``p``."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            tags[name.strip().lower()] = value.strip()
    if tags.get("v") != "DMARC1" or not text.strip().startswith("v"):
        return None
    p = tags.get("p", "").lower()
    if p not in ("none", "quarantine", "reject"):
        return None
    sp = tags.get("sp", "").lower() or None
    if sp not in (None, "none", "quarantine", "reject"):
        sp = None
    try:
        pct = max(0, min(100, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    adkim = "s" if tags.get("adkim", "r").lower() == "s" else "r"
    aspf = "s" if tags.get("aspf", "r").lower() == "s" else "r"
    return Record(p, sp, adkim, aspf, pct)


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # pass, fail, none, temperror, permerror
    from_domain: str | None
    policy: str  # what to do: none, quarantine, reject
    reason: str = ""


def aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.lower(), b.lower()
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


async def evaluate(
    from_domain: str | None,
    spf: SpfResult,
    dkim: Sequence[DkimResult],
    txt: Callable[[str], Awaitable[list[bytes]]],
    sample: Callable[[], float] = random.random,
) -> DmarcResult:
    if from_domain is None:
        return DmarcResult("permerror", None, "none", "no single From domain")
    record: Record | None = None
    org = organizational_domain(from_domain)
    is_sub = org != from_domain.lower()
    try:
        for name in dict.fromkeys([f"_dmarc.{from_domain}", f"_dmarc.{org}"]):  # §6.6.3
            found = [parse_record(t.decode("utf-8", "replace")) for t in await txt(name)]
            valid = [r for r in found if r is not None]
            if len(valid) == 1:
                record = valid[0]
                break
    except Exception as exc:
        return DmarcResult("temperror", from_domain, "none", str(exc))
    if record is None:
        return DmarcResult("none", from_domain, "none", "no DMARC record")
    spf_ok = spf.result == "pass" and spf.identity == "mailfrom" and aligned(spf.domain, from_domain, record.aspf)
    dkim_ok = any(d.result == "pass" and d.domain and aligned(d.domain, from_domain, record.adkim) for d in dkim)
    if spf_ok or dkim_ok:
        return DmarcResult("pass", from_domain, "none", "aligned " + ("dkim" if dkim_ok else "spf"))
    policy = record.sp if (is_sub and record.sp) else record.p
    if record.pct < 100 and sample() * 100 >= record.pct:  # §6.6.4: pct sampling
        policy = {"reject": "quarantine", "quarantine": "none"}.get(policy, policy)
    return DmarcResult("fail", from_domain, policy, "no aligned SPF or DKIM pass")
