"""The autoconfiguration documents, built from the configuration (pure functions).

Servers are offered in the order clients should prefer them: implicit TLS first (RFC 8314 §3),
then STARTTLS; a listener that is off is left out. The user name is always the full address.
"""

from __future__ import annotations

import plistlib
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from courriel.config import Config
from courriel.dnssetup.records import port_of


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # imap, pop3, smtp
    host: str
    port: int
    security: str  # "tls" (implicit) or "starttls"


def endpoints(cfg: Config) -> list[Endpoint]:
    host = cfg.server.hostname
    out = []
    for protocol, section, security in (
        ("imap", "imaps", "tls"), ("imap", "imap", "starttls"),
        ("pop3", "pop3s", "tls"), ("pop3", "pop3", "starttls"),
        ("smtp", "submissions", "tls"), ("smtp", "submission", "starttls"),
    ):  # fmt: skip
        port = port_of(cfg, section)
        if port:
            out.append(Endpoint(protocol, host, port, security))
    return out


def thunderbird(cfg: Config, domain: str) -> str:
    """Mozilla's autoconfig format, version 1.1 (as the ISPDB serves it)."""
    d = escape(domain)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{d}">',
        f"    <domain>{d}</domain>",
        f"    <displayName>{d} mail</displayName>",
        f"    <displayShortName>{d}</displayShortName>",
    ]
    for e in endpoints(cfg):
        tag = "outgoingServer" if e.protocol == "smtp" else "incomingServer"
        lines += [
            f'    <{tag} type="{e.protocol}">',
            f"      <hostname>{escape(e.host)}</hostname>",
            f"      <port>{e.port}</port>",
            f"      <socketType>{'SSL' if e.security == 'tls' else 'STARTTLS'}</socketType>",
            "      <authentication>password-cleartext</authentication>",
            "      <username>%EMAILADDRESS%</username>",
            f"    </{tag}>",
        ]
    lines += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(lines)


OUTLOOK_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
OUTLOOK_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def outlook(cfg: Config, address: str) -> str:
    """The POX autodiscover answer ([MS-OXDSCLI] §2.2.4): one Protocol per service, preferred first."""
    a = escape(address)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">',
        f'  <Response xmlns="{OUTLOOK_RESPONSE_NS}">',
        "    <Account>",
        "      <AccountType>email</AccountType>",
        "      <Action>settings</Action>",
    ]
    seen: set[str] = set()
    for e in endpoints(cfg):
        if e.protocol in seen:  # Outlook takes one IMAP, one POP3 and one SMTP entry
            continue
        seen.add(e.protocol)
        lines += [
            "      <Protocol>",
            f"        <Type>{e.protocol.upper()}</Type>",
            f"        <Server>{escape(e.host)}</Server>",
            f"        <Port>{e.port}</Port>",
            f"        <LoginName>{a}</LoginName>",
            "        <DomainRequired>off</DomainRequired>",
            "        <SPA>off</SPA>",
            f"        <SSL>{'on' if e.security == 'tls' else 'off'}</SSL>",
            f"        <Encryption>{'SSL' if e.security == 'tls' else 'TLS'}</Encryption>",
            "        <AuthRequired>on</AuthRequired>",
        ]
        if e.protocol == "smtp":
            lines.append("        <UsePOPAuth>off</UsePOPAuth>")
        lines.append("      </Protocol>")
    lines += ["    </Account>", "  </Response>", "</Autodiscover>", ""]
    return "\n".join(lines)


def apple_profile(cfg: Config, address: str) -> bytes:
    """An unsigned .mobileconfig with one com.apple.mail.managed payload (IMAP + SMTP).

    The UUIDs derive from the address and host, so installing it again updates the account
    instead of adding a second one. The password is not included: the device asks for it."""
    host = cfg.server.hostname
    ends = endpoints(cfg)
    incoming = next((e for e in ends if e.protocol == "imap"), None) or next((e for e in ends if e.protocol == "pop3"), None)
    outgoing = next((e for e in ends if e.protocol == "smtp"), None)
    if incoming is None or outgoing is None:
        raise ValueError("no IMAP/POP3 or submission listener to configure")
    ns = uuid.uuid5(uuid.NAMESPACE_DNS, host)
    ident = ".".join(reversed(host.split(".")))
    payload = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.courriel.mail.{address}",
        "PayloadUUID": str(uuid.uuid5(ns, "mail:" + address.lower())).upper(),
        "PayloadDisplayName": address,
        "EmailAccountDescription": address,
        "EmailAccountType": "EmailTypeIMAP" if incoming.protocol == "imap" else "EmailTypePOP",
        "EmailAddress": address,
        "IncomingMailServerHostName": incoming.host,
        "IncomingMailServerPortNumber": incoming.port,
        "IncomingMailServerUseSSL": incoming.security == "tls",
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerUsername": address,
        "OutgoingMailServerHostName": outgoing.host,
        "OutgoingMailServerPortNumber": outgoing.port,
        "OutgoingMailServerUseSSL": outgoing.security == "tls",
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerUsername": address,
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.courriel.{address}",
        "PayloadUUID": str(uuid.uuid5(ns, "profile:" + address.lower())).upper(),
        "PayloadDisplayName": f"Mail for {address}",
        "PayloadDescription": f"Sets up the mail account {address} on {host}.",
        "PayloadOrganization": address.rpartition("@")[2],
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
