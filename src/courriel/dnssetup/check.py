"""``courriel check DOMAIN``: compare the live DNS with :func:`records.records`.

Each expected record gets a verdict: ``ok``, ``missing`` (nothing there), ``wrong`` (something
else there) or ``error`` (the lookup failed). What a verdict looks at depends on the type: the
MX set must contain our hosts, exactly one SPF record must exist, a DKIM key must match ours
byte for byte, an SRV must point at our host and port, a CNAME may also be satisfied by the
same addresses as the target (a flattened record).
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
import dns.reversename

from courriel.dnssetup.records import Record


@dataclass(frozen=True)
class Verdict:
    record: Record
    status: str  # ok, missing, wrong, error
    found: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Lookup:
    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    def __call__(self, name: str, rtype: str) -> list[str]:
        """Record values as text (TXT strings joined); [] when none; raises on failure."""
        try:
            answer = self.resolver.resolve(name, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        if answer.rrset is None:
            return []
        if rtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        return [r.to_text() for r in answer.rrset]


def _txt_fields(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq:
            out[key.strip().lower()] = "".join(value.split())
    return out


def judge(rec: Record, lookup: Lookup) -> Verdict:
    try:
        return _judge(rec, lookup)
    except (dns.exception.DNSException, OSError) as exc:
        return Verdict(rec, "error", f"{type(exc).__name__}: {exc}".strip())


def _judge(rec: Record, lookup: Lookup) -> Verdict:
    if rec.rtype == "MX":
        want = rec.value.split()[1].lower()
        found = lookup(rec.name, "MX")
        hosts = [v.split()[1].lower() for v in found]
        return Verdict(rec, "ok" if want in hosts else ("wrong" if found else "missing"), ", ".join(found))
    if rec.rtype in ("A", "AAAA"):
        found = lookup(rec.name, rec.rtype)
        return Verdict(rec, "ok" if rec.value in found else ("wrong" if found else "missing"), ", ".join(found))
    if rec.rtype == "SRV":
        found = lookup(rec.name, "SRV")
        target = rec.value.split()
        match = any(v.split()[2:] == [target[2], target[3].lower()] for v in (f.lower() for f in found))
        return Verdict(rec, "ok" if match else ("wrong" if found else "missing"), ", ".join(found))
    if rec.rtype == "CNAME":
        cnames = lookup(rec.name, "CNAME")
        if cnames:
            return Verdict(rec, "ok" if rec.value.lower() in (f.lower() for f in cnames) else "wrong", ", ".join(cnames))
        addresses = set(lookup(rec.name, "A") + lookup(rec.name, "AAAA"))
        of_target = set(lookup(rec.value, "A") + lookup(rec.value, "AAAA"))
        if addresses:
            return Verdict(rec, "ok" if addresses & of_target else "wrong", ", ".join(sorted(addresses)))
        return Verdict(rec, "missing")
    if rec.rtype == "TXT":
        return _judge_txt(rec, lookup(rec.name, "TXT"))
    raise ValueError(f"cannot check {rec.rtype}")


def _judge_txt(rec: Record, found: list[str]) -> Verdict:
    want = _txt_fields(rec.value)
    tag = rec.value.split(";")[0].split()[0].lower()  # v=spf1, v=DKIM1, v=DMARC1, v=STSv1, v=TLSRPTv1
    mine = [f for f in found if f.lower().startswith(tag)]
    shown = " | ".join(found)
    if not mine:
        return Verdict(rec, "wrong" if found and tag.startswith("v=dkim") else "missing", shown)
    if len(mine) > 1 and tag in ("v=spf1", "v=dmarc1", "v=stsv1", "v=tlsrptv1"):
        return Verdict(rec, "wrong", f"{len(mine)} records (exactly one allowed): {shown}")
    have = _txt_fields(mine[0]) if not tag.startswith("v=spf1") else {}
    if tag == "v=dkim1":
        ok = have.get("p") == want.get("p")
    elif tag == "v=dmarc1":
        ok = have.get("p") in ("none", "quarantine", "reject")
    elif tag == "v=stsv1":
        ok = have.get("id") == want.get("id")
    elif tag == "v=tlsrptv1":
        ok = bool(have.get("rua"))
    else:  # SPF: one record that can let the MX hosts send
        words = mine[0].lower().split()
        ok = any(w.lstrip("+") in ("mx", "a") or w.startswith(("+mx", "mx:", "a:", "ip4:", "ip6:", "include:")) for w in words)
    return Verdict(rec, "ok" if ok else "wrong", shown)


def check_ptr(host: str, addresses: list[str], lookup: Lookup) -> list[tuple[str, str, bool]]:
    """Forward-confirmed reverse DNS of the mail host's addresses: (address, PTR found, ok)."""
    out = []
    for ip in addresses:
        try:
            names = lookup(dns.reversename.from_address(ip).to_text(), "PTR")
        except (dns.exception.DNSException, OSError):
            names = []
        out.append((ip, ", ".join(names), host.lower() in (n.lower() for n in names)))
    return out
