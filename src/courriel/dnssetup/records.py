"""The DNS records a domain served by this courriel needs, computed from the configuration.

Every record carries its purpose and the standard that asks for it, so that the zone printed
by ``courriel dns`` explains itself and ``courriel check`` can say what is missing and why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from courriel.config import Config
from courriel.mailauth import dkim

#: TTL of the printed records: an hour, so that a mistake is soon corrected.
TTL = 3600


@dataclass(frozen=True)
class Record:
    name: str  # absolute, with the final dot
    rtype: str  # MX, TXT, SRV, CNAME, A, AAAA
    value: str  # as in a zone file (TXT: the text itself, unquoted)
    purpose: str
    required: bool = True  # mail breaks without it (MX, SPF, DKIM, DMARC), else recommended

    def zone_value(self) -> str:
        return txt_strings(self.value) if self.rtype == "TXT" else self.value

    def zone_line(self) -> str:
        return f"{self.name} {TTL} IN {self.rtype} {self.zone_value()}"


def txt_strings(text: str) -> str:
    """A TXT value as zone-file strings of at most 255 octets (RFC 1035 §3.3.14), quoted."""
    data = text.encode()
    parts = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    quoted = ['"' + p.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts]
    return quoted[0] if len(quoted) == 1 else "( " + " ".join(quoted) + " )"


def fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def port_of(cfg: Config, section: str) -> int | None:
    """The port a listener section serves on, or None when it is off."""
    listener = getattr(cfg, section)
    addresses = listener.addresses()
    return addresses[0][1] if addresses else None


def mx_hosts(cfg: Config) -> list[str]:
    names = [n.strip() for n in cfg.mta_sts.mx.split(",") if n.strip()]
    return names or [cfg.server.hostname]


def mta_sts_policy(cfg: Config) -> str:
    """The policy file of RFC 8461 §3.2 (CRLF line ends, as the RFC's ABNF asks)."""
    lines = ["version: STSv1", f"mode: {cfg.mta_sts.mode}"]
    lines += [f"mx: {host}" for host in mx_hosts(cfg)]
    lines.append(f"max_age: {cfg.mta_sts.max_age}")
    return "\r\n".join(lines) + "\r\n"


def mta_sts_id(cfg: Config) -> str:
    """A policy id that changes exactly when the policy text does (RFC 8461 §3.1: 1-32 alphanumerics)."""
    return hashlib.sha256(mta_sts_policy(cfg).encode()).hexdigest()[:20]


#: (service label, listener section, priority) for the SRV records of RFC 6186 and RFC 8314.
#: Implicit TLS gets the better priority (RFC 8314 §5.1).
_SRV = (
    ("_submissions._tcp", "submissions", 0, "RFC 8314 §5.1: mail submission over implicit TLS"),
    ("_submission._tcp", "submission", 10, "RFC 6186 §3.1: mail submission with STARTTLS"),
    ("_imaps._tcp", "imaps", 0, "RFC 6186 §3.2 / RFC 8314: IMAP over implicit TLS"),
    ("_imap._tcp", "imap", 10, "RFC 6186 §3.2: IMAP with STARTTLS"),
    ("_pop3s._tcp", "pop3s", 0, "RFC 6186 §3.3 / RFC 8314: POP3 over implicit TLS"),
    ("_pop3._tcp", "pop3", 10, "RFC 6186 §3.3: POP3 with STLS"),
    ("_jmap._tcp", "http", 0, "RFC 8620 §2.2: JMAP service discovery"),
    ("_autodiscover._tcp", "http", 0, "Outlook autodiscover over HTTPS"),
)


def records(cfg: Config, domain: str, ipv4: list[str] | None = None, ipv6: list[str] | None = None) -> list[Record]:
    """Every record ``domain`` needs, in the order of a zone file."""
    domain = fqdn(domain)
    bare = domain.rstrip(".")
    host = fqdn(cfg.server.hostname)
    out: list[Record] = []
    for i, mx in enumerate(mx_hosts(cfg)):
        out.append(Record(domain, "MX", f"{10 * (i + 1)} {fqdn(mx)}", "RFC 5321 §5: where mail for the domain goes"))
    for ip in ipv4 or []:
        out.append(Record(host, "A", ip, "the mail server's IPv4 address (its PTR should name it back)"))
    for ip in ipv6 or []:
        out.append(Record(host, "AAAA", ip, "the mail server's IPv6 address (its PTR should name it back)"))
    out.append(Record(domain, "TXT", "v=spf1 mx -all", "RFC 7208: only the domain's MX hosts send its mail"))
    for key in dkim.load_keys(cfg.path(cfg.outbound.dkim_dir), bare):
        out.append(Record(fqdn(key.dns_name()), "TXT", dkim.public_record(key), "RFC 6376: DKIM public key"))
    out.append(
        Record(
            fqdn("_dmarc." + bare), "TXT", f"v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@{bare}",
            "RFC 7489: what receivers do with mail failing SPF and DKIM, and where reports go",
        )
    )  # fmt: skip
    out.append(Record(fqdn("_mta-sts." + bare), "TXT", f"v=STSv1; id={mta_sts_id(cfg)}", "RFC 8461 §3.1: MTA-STS policy present", False))
    out.append(Record(fqdn("mta-sts." + bare), "CNAME", host, "RFC 8461 §3.3: serves https://mta-sts.DOMAIN/.well-known/mta-sts.txt", False))
    rua = cfg.mta_sts.tlsrpt_rua or f"mailto:tls-reports@{bare}"
    out.append(Record(fqdn("_smtp._tls." + bare), "TXT", f"v=TLSRPTv1; rua={rua}", "RFC 8460: where TLS failure reports go", False))
    for label, section, priority, purpose in _SRV:
        port = port_of(cfg, section)
        value = f"{priority} 1 {port} {host}" if port else "0 0 0 ."  # RFC 6186 §4: "." = not offered
        out.append(Record(fqdn(f"{label}.{bare}"), "SRV", value, purpose, False))
    out.append(Record(fqdn("autoconfig." + bare), "CNAME", host, "Thunderbird autoconfiguration", False))
    out.append(Record(fqdn("autodiscover." + bare), "CNAME", host, "Outlook autodiscover", False))
    return out


def zone(cfg: Config, domain: str, ipv4: list[str] | None = None, ipv6: list[str] | None = None) -> str:
    recs = records(cfg, domain, ipv4, ipv6)
    lines = [f"; DNS records for {domain.rstrip('.')} served by {cfg.server.hostname} (courriel dns)", ""]
    if not ipv4 and not ipv6:
        lines += [f"; {fqdn(cfg.server.hostname)} needs A/AAAA records (give --ipv4/--ipv6 to print them),",
                  "; and each address a PTR record naming it back.", ""]  # fmt: skip
    if not any(r.name.endswith("._domainkey." + fqdn(domain)) for r in recs):
        lines += [f"; no DKIM key yet: courriel dkim keygen {domain.rstrip('.')}", ""]
    for r in recs:
        lines.append(f"; {r.purpose}{'' if r.required else ' (recommended)'}")
        lines.append(r.zone_line())
    return "\n".join(lines) + "\n"


def dkim_dir(cfg: Config) -> Path:
    return cfg.path(cfg.outbound.dkim_dir)
