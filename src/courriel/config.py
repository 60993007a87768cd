"""Configuration: ``DIR/courriel.toml``, typed and validated, overridable from the environment.

Every section is a dataclass below; every field is a key. Loading rejects an unknown
section or key and a value of the wrong type with a :class:`ConfigError` that names it
(``imap.listen``), so a typo stops the start instead of being ignored. Any key can be
overridden by ``COURRIEL_<SECTION>_<KEY>`` (upper case), e.g.
``COURRIEL_IMAP_LISTEN=127.0.0.1:11143``. ``COURRIEL_DATA`` is not a key: it names the
data directory (see the CLI).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "courriel.toml"
ENV_PREFIX = "COURRIEL_"
#: Environment variables with our prefix that are not configuration keys.
ENV_NOT_KEYS = frozenset({"COURRIEL_DATA"})


class ConfigError(ValueError):
    """A configuration problem; the message names the key."""


def parse_listen(value: str, key: str = "listen") -> list[tuple[str, int]]:
    """Parse ``host:port[,host:port...]`` (IPv6 hosts in brackets). Empty means off."""
    out: list[tuple[str, int]] = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        host, sep, port_s = item.rpartition(":")
        if not sep or not port_s.isdigit():
            raise ConfigError(f"{key}: {item!r} is not host:port")
        port = int(port_s)
        if not 0 < port < 65536:
            raise ConfigError(f"{key}: port {port} out of range")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host:
            raise ConfigError(f"{key}: {item!r} has no host")
        out.append((host, port))
    return out


@dataclass
class ServerSection:
    hostname: str = "localhost"
    #: The domain created at init; informative (local domains live in the store).
    domain: str = "example.test"
    log_level: str = "info"
    log_format: str = "text"
    #: Addresses or CIDR networks of the proxies (HAProxy, load balancers) allowed to send
    #: a PROXY protocol header to listeners with ``proxy_protocol = true``.
    trusted_proxies: list[str] = field(default_factory=list)
    #: Seconds to wait for the PROXY header on such a listener (the spec asks for >= 3).
    proxy_timeout: int = 5
    #: Started as root: bind the ports, then run as this user (and group; empty: the user's).
    user: str = ""
    group: str = ""

    def validate(self) -> None:
        from courriel.proxy import parse_networks

        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.proxy_timeout < 3:
            raise ConfigError("server.proxy_timeout: must be at least 3 seconds")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"server.log_level: {self.log_level!r} is not debug/info/warning/error")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"server.log_format: {self.log_format!r} is not text/json")


@dataclass
class StoreSection:
    backend: str = "sqlite"
    #: SQLite: the database file, relative to the data directory.
    path: str = "courriel.db"
    #: Message files, relative to the data directory.
    blobs: str = "blobs"
    #: PostgreSQL DSN (backend "postgres"), e.g. postgresql://courriel@db.example/courriel.
    dsn: str = ""
    #: PostgreSQL: message files in this directory shared by every node (absolute, or
    #: relative to the data directory); empty: message bytes in the database (bytea).
    blob_dir: str = ""
    #: PostgreSQL: connections per process (the change listener takes one more).
    pool_size: int = 10

    def validate(self) -> None:
        if self.backend not in ("sqlite", "postgres"):
            raise ConfigError(f"store.backend: {self.backend!r} is not sqlite or postgres")
        if self.backend == "postgres" and not self.dsn:
            raise ConfigError("store.dsn: required when store.backend is postgres")
        if self.pool_size < 1:
            raise ConfigError("store.pool_size: must be at least 1")


@dataclass
class TLSSection:
    cert: str = "tls/cert.pem"
    key: str = "tls/key.pem"
    #: Seconds between looks at the certificate files (reloaded when they change; SIGHUP too).
    reload_interval: int = 60

    def validate(self) -> None:
        if self.reload_interval <= 0:
            raise ConfigError("tls.reload_interval: must be positive")


@dataclass
class AcmeSection:
    """``[acme]``: certificates from an ACME CA (RFC 8555), HTTP-01 on the http listener."""

    enabled: bool = False
    #: The CA's directory URL (Let's Encrypt by default).
    directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    #: Contact address for the account (optional).
    email: str = ""
    #: Names besides server.hostname to put in the certificate.
    names: list[str] = field(default_factory=list)
    #: PEM file of CAs to trust for the directory's HTTPS (a test CA); empty: the system's.
    ca_bundle: str = ""
    #: Renew when fewer days than this remain.
    renew_days: int = 30
    #: Seconds between looks at the certificate's expiry.
    check_interval: int = 12 * 3600
    #: Plain-HTTP address(es) answering HTTP-01 and redirecting the rest to https://, for when
    #: the http listener serves HTTPS on 443 (production: "0.0.0.0:80"); empty: none.
    http_listen: str = ""

    def validate(self) -> None:
        if not self.directory.startswith(("https://", "http://")):
            raise ConfigError("acme.directory: must be an https:// URL")
        if self.renew_days <= 0 or self.check_interval <= 0:
            raise ConfigError("acme.renew_days and acme.check_interval: must be positive")
        if self.http_listen:
            parse_listen(self.http_listen, "acme.http_listen")


@dataclass
class LimitsSection:
    max_message_size: int = 50 * 1024 * 1024
    max_line_length: int = 8192
    max_mime_depth: int = 100
    max_connections: int = 10000
    max_connections_per_ip: int = 200
    max_auth_failures: int = 5

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"limits.{f.name}: must be positive")


@dataclass
class ListenerSection:
    listen: str = ""
    enabled: bool = True
    #: Expect a PROXY protocol header (v1 or v2) on every connection, from
    #: ``server.trusted_proxies`` only (see courriel.proxy).
    proxy_protocol: bool = False

    def addresses(self) -> list[tuple[str, int]]:
        return parse_listen(self.listen) if self.enabled else []


@dataclass
class AuthListenerSection(ListenerSection):
    #: Password authentication before TLS (test tools on loopback); never on by default.
    allow_plaintext_auth: bool = False


@dataclass
class HttpSection(ListenerSection):
    """``[http]``: webmail, JMAP, metrics, client autoconfiguration and ACME challenges."""

    #: Serve HTTPS with the [tls] certificate (``init --production`` turns it on).
    tls: bool = False
    #: Password authentication over plain HTTP from a non-loopback client; never on by default.
    #: (Loopback clients may always authenticate, as browsers treat localhost as secure.)
    allow_plaintext_auth: bool = False
    #: Public base URL (e.g. https://mail.example.org) for links and the JMAP session
    #: resource; empty means derived from each request.
    public_url: str = ""
    #: Largest request body accepted (uploads, JMAP calls), in bytes.
    max_request_size: int = 50 * 1024 * 1024
    #: Client networks allowed to read ``/metrics`` (comma-separated addresses or CIDRs).
    metrics_allow: str = "127.0.0.0/8, ::1"
    #: Seconds without a request before a webmail session ends (sessions are kept in the store).
    webmail_session_timeout: int = 8 * 3600
    #: Seconds after its login when a webmail session ends however active it is.
    webmail_session_max_age: int = 30 * 24 * 3600

    def validate(self) -> None:
        if self.max_request_size <= 0:
            raise ConfigError("http.max_request_size: must be positive")
        if self.webmail_session_timeout <= 0:
            raise ConfigError("http.webmail_session_timeout: must be positive")
        if self.webmail_session_max_age <= 0:
            raise ConfigError("http.webmail_session_max_age: must be positive")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("http.public_url: must be an http:// or https:// URL")
        for part in self.metrics_allow.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ConfigError(f"http.metrics_allow: {part.strip()!r} is not an address or network") from None


@dataclass
class Pop3Section(AuthListenerSection):
    """``[pop3]``; its protocol keys apply to ``pop3s`` too."""

    #: Seconds without a command before the session closes (RFC 1939 §3: at least 600).
    idle_timeout: int = 600
    #: Longest command line accepted, CRLF included (RFC 2449 §4 allows 255).
    max_command_length: int = 1024
    #: Failed authentications in one connection before it is closed.
    max_auth_attempts: int = 3
    #: Consecutive bad commands (unknown, wrong state, syntax) before the connection is closed.
    max_bad_commands: int = 20

    def validate(self) -> None:
        for key in ("idle_timeout", "max_command_length", "max_auth_attempts", "max_bad_commands"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"pop3.{key}: must be positive")
        if self.max_command_length < 255:
            raise ConfigError("pop3.max_command_length: must be at least 255 (RFC 2449 §4)")


@dataclass
class SmtpSection(ListenerSection):
    """``[smtp]``; its protocol keys apply to ``submission`` and ``submissions`` too."""

    #: Recipients accepted per message (RFC 5321 §4.5.3.1.8 asks for at least 100).
    max_recipients: int = 100
    #: Seconds to wait for a command (RFC 5321 §4.5.3.2.7: 5 minutes).
    command_timeout: int = 300
    #: Seconds to wait for each block of message data (RFC 5321 §4.5.3.2.5-6).
    data_timeout: int = 600
    #: Seconds a whole session may last.
    session_timeout: int = 3600
    #: Bad commands (unknown, out of sequence, syntax) before the session is closed.
    max_bad_commands: int = 20
    #: Failed AUTH attempts in one session before it is closed.
    max_auth_attempts: int = 3
    #: Messages per session (then 421 closes it).
    max_messages_per_session: int = 1000

    def validate(self) -> None:
        for key in (
            "max_recipients", "command_timeout", "data_timeout", "session_timeout",
            "max_bad_commands", "max_auth_attempts", "max_messages_per_session",
        ):  # fmt: skip
            if getattr(self, key) <= 0:
                raise ConfigError(f"smtp.{key}: must be positive")


@dataclass
class ImapSection(AuthListenerSection):
    """IMAP (``imap``; the ``imaps`` listener shares these settings)."""

    #: Seconds without a command (or in IDLE) before autologout; RFC 9051 §5.4: at least 30 min.
    idle_timeout: int = 1800
    #: Longest command line, and longest literal outside APPEND (APPEND: limits.max_message_size).
    max_line_length: int = 65536
    #: Concurrent authenticated sessions per user (imap and imaps together).
    max_connections_per_user: int = 50
    #: Seconds a connection may stay unauthenticated between commands (RFC 9051 §5.4's
    #: 30 minutes apply after login only), so idle or slowloris connections cannot pile up.
    login_timeout: int = 120

    def validate(self) -> None:
        if self.login_timeout <= 0:
            raise ConfigError("imap.login_timeout: must be positive")
        if self.idle_timeout < 1800:
            raise ConfigError("imap.idle_timeout: must be at least 1800 seconds (RFC 9051 §5.4)")
        if self.max_line_length < 1024:
            raise ConfigError("imap.max_line_length: must be at least 1024")
        if self.max_connections_per_user <= 0:
            raise ConfigError("imap.max_connections_per_user: must be positive")


@dataclass
class ManageSieveSection(AuthListenerSection):
    """``[managesieve]`` (RFC 5804; port 4190, development 14190)."""

    #: Seconds without a command before the connection closes.
    idle_timeout: int = 600
    #: Largest script accepted, in octets (PUTSCRIPT, CHECKSCRIPT; QUOTA/MAXSIZE beyond).
    max_script_size: int = 256 * 1024
    #: Scripts per user (QUOTA/MAXSCRIPTS beyond).
    max_scripts: int = 20
    #: Failed authentications in one connection before it is closed.
    max_auth_attempts: int = 3
    #: Bad commands (unknown, wrong state, syntax) before the connection is closed.
    max_bad_commands: int = 20

    def validate(self) -> None:
        for key in ("idle_timeout", "max_script_size", "max_scripts", "max_auth_attempts", "max_bad_commands"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"managesieve.{key}: must be positive")


@dataclass
class SpamSection:
    """``[spam]``: optional filtering through rspamd's HTTP API (off by default)."""

    enabled: bool = False
    #: rspamd's normal worker (``/checkv2``) and controller (``/learnspam``, ``/learnham``).
    url: str = "http://127.0.0.1:11333"
    controller_url: str = "http://127.0.0.1:11334"
    #: Controller password, when rspamd requires one for learning.
    password: str = ""
    #: Score from which a message is filed into Junk (and marked X-Spam: Yes).
    junk_score: float = 6.0
    #: Score from which a message is refused in SMTP (554 5.7.1); 0 disables refusing.
    reject_score: float = 15.0
    #: Seconds to wait for rspamd; on timeout or error the message passes unfiltered.
    timeout: float = 10.0
    #: Learn spam/ham when users move messages into or out of Junk over IMAP.
    learn: bool = True
    #: Largest message sent to rspamd; larger ones pass unfiltered.
    max_size: int = 10 * 1024 * 1024

    def validate(self) -> None:
        for key in ("url", "controller_url"):
            if not getattr(self, key).startswith(("http://", "https://")):
                raise ConfigError(f"spam.{key}: must be an http:// or https:// URL")
        if self.timeout <= 0 or self.max_size <= 0:
            raise ConfigError("spam.timeout and spam.max_size: must be positive")


@dataclass
class MtaStsSection:
    """``[mta_sts]``: the MTA-STS policy (RFC 8461) served at /.well-known/mta-sts.txt."""

    #: ``enforce``, ``testing`` or ``none`` (RFC 8461 §3.2).
    mode: str = "testing"
    #: Seconds senders may cache the policy (RFC 8461 §3.2: up to 31557600).
    max_age: int = 604800
    #: MX names allowed by the policy (comma separated); empty: server.hostname.
    mx: str = ""
    #: Where TLS reports go (RFC 8460 rua); empty: mailto:tls-reports@DOMAIN.
    tlsrpt_rua: str = ""

    def validate(self) -> None:
        if self.mode not in ("enforce", "testing", "none"):
            raise ConfigError(f"mta_sts.mode: {self.mode!r} is not enforce/testing/none")
        if not 0 < self.max_age <= 31557600:
            raise ConfigError("mta_sts.max_age: must be between 1 and 31557600 seconds")


@dataclass
class QuotaSection:
    #: Default per-user quota for new users; 0 means unlimited.
    default_bytes: int = 0
    default_messages: int = 0


@dataclass
class OutboundSection:
    """``[outbound]``: the queue runner and SMTP client that deliver to remote domains."""

    enabled: bool = True
    #: DNS resolvers, ``host`` or ``host:port``, comma separated; empty: the system's.
    dns: str = ""
    #: Port of the remote MX (25; tests point it at another server on loopback).
    port: int = 25
    #: Relay everything through this host (``host:port``); empty: MX routing.
    smarthost: str = ""
    #: Per-domain relays: ``domain=host:port`` entries (take precedence over ``smarthost``).
    routes: list[str] = field(default_factory=list)
    smarthost_user: str = ""
    smarthost_password: str = ""
    #: How to reach the smarthost: ``starttls`` (required), ``tls`` (implicit) or ``none``.
    smarthost_tls: str = "starttls"
    #: Verify remote certificates (STARTTLS to an MX is opportunistic unless this is on).
    tls_verify: bool = False
    #: Name given in EHLO; empty: server.hostname.
    helo: str = ""
    #: Seconds a message may wait for delivery before it bounces (5 days).
    lifetime: int = 5 * 86400
    #: First retry delay in seconds; each retry doubles it up to ``retry_max``.
    retry_base: int = 300
    retry_max: int = 4 * 3600
    #: Send a delay warning once a recipient has waited this long (seconds; 0: never).
    delay_warning: int = 4 * 3600
    #: Seconds to wait for each SMTP reply.
    timeout: int = 300
    #: Milliseconds between looks at the queue.
    poll_ms: int = 1000
    #: Concurrent connections in total and per destination domain.
    max_connections: int = 20
    max_per_domain: int = 4
    #: Messages sent over one connection before it is closed.
    max_per_connection: int = 100
    #: DKIM keys, one folder per domain (``courriel dkim keygen``), relative to the data directory.
    dkim_dir: str = "dkim"
    #: SRS secret for forwarded mail; empty: generated into ``srs.key`` in the data directory.
    srs_secret: str = ""
    srs_domain: str = ""
    #: Honour the MTA-STS policies of recipient domains (RFC 8461), cached in DATA/mta-sts.
    mta_sts: bool = True
    #: PEM file of CAs trusted for policy fetches and TLS-RPT https: posts (a test CA);
    #: empty: the system's. MX certificates under a policy are checked against it too.
    mta_sts_ca_bundle: str = ""
    #: Port of the policy host's HTTPS (443; tests use another).
    mta_sts_port: int = 443
    #: Send TLS reports (RFC 8460) to the rua of each policy domain, once per period (seconds).
    tlsrpt: bool = True
    tlsrpt_period: int = 86400

    def validate(self) -> None:
        for key in (
            "port", "lifetime", "retry_base", "retry_max", "timeout", "poll_ms",
            "max_connections", "max_per_domain", "max_per_connection", "mta_sts_port", "tlsrpt_period",
        ):  # fmt: skip
            if getattr(self, key) <= 0:
                raise ConfigError(f"outbound.{key}: must be positive")
        if self.smarthost_tls not in ("starttls", "tls", "none"):
            raise ConfigError(f"outbound.smarthost_tls: {self.smarthost_tls!r} is not starttls/tls/none")
        if self.smarthost:
            parse_listen(self.smarthost, "outbound.smarthost")
        for route in self.routes:
            domain, eq, target = route.partition("=")
            if not eq or not domain:
                raise ConfigError(f"outbound.routes: {route!r} is not domain=host:port")
            parse_listen(target, "outbound.routes")


@dataclass
class MailauthSection:
    """``[mailauth]``: SPF, DKIM and DMARC checks of mail arriving from other servers."""

    #: Check incoming mail and add Authentication-Results (RFC 8601).
    enabled: bool = True
    #: Enforce DMARC policies: p=reject gets 550 5.7.1, p=quarantine goes to Junk.
    enforce_dmarc: bool = True
    #: Refuse mail from outside whose From claims a local domain without passing DMARC.
    reject_local_spoof: bool = True


@dataclass
class LmtpSection(ListenerSection):
    """``[lmtp]``: delivery from an MTA on this host (RFC 2033); limits as in ``[smtp]``."""

    #: A Unix socket to listen on too (relative to the data directory); empty: none.
    socket: str = ""
    #: Permissions of the socket (octal): the MTA's user must be able to connect.
    socket_mode: str = "666"
    #: TCP clients allowed (comma-separated networks); LMTP has no authentication.
    trusted_networks: str = "127.0.0.0/8, ::1/128"

    def validate(self) -> None:
        import ipaddress

        try:
            int(self.socket_mode, 8)
        except ValueError:
            raise ConfigError(f"lmtp.socket_mode: {self.socket_mode!r} is not octal") from None
        for net in (n.strip() for n in self.trusted_networks.split(",")):
            try:
                ipaddress.ip_network(net, strict=False) if net else None
            except ValueError:
                raise ConfigError(f"lmtp.trusted_networks: {net!r} is not a network") from None


@dataclass
class LookupSection(ListenerSection):
    """``[lookup]``: recipient lookups for an MTA in front (Postfix/Sendmail socketmap)."""

    #: Seconds a lookup connection may stay idle.
    idle_timeout: int = 300

    def validate(self) -> None:
        if self.idle_timeout <= 0:
            raise ConfigError("lookup.idle_timeout: must be positive")


def _listener(port: int, auth: bool = False) -> Any:
    cls = AuthListenerSection if auth else ListenerSection
    return field(default_factory=lambda: cls(listen=f"127.0.0.1:{port}"))


@dataclass
class JmapSection:
    """``[jmap]``: limits advertised in the JMAP session resource (RFC 8620 §2) and enforced."""

    max_calls_in_request: int = 64
    max_objects_in_get: int = 1000
    max_objects_in_set: int = 1000
    max_concurrent_requests: int = 8  # per user
    #: Largest single upload, and the most one user may hold at once (uploads expire).
    max_size_upload: int = 50 * 1024 * 1024
    max_concurrent_upload: int = 4  # per user
    upload_quota: int = 200 * 1024 * 1024
    upload_ttl: int = 24 * 3600  # seconds an uploaded blob is kept
    #: EventSource connections one user may hold open.
    max_event_streams: int = 8
    #: ``:days`` of the Sieve vacation a JMAP VacationResponse makes (one reply per sender per
    #: this many days, RFC 5230 §4.1).
    vacation_days: int = 7

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"jmap.{f.name}: must be positive")


@dataclass
class TraceSection:
    """``[trace]``: session transcripts (courriel.trace). Nothing is recorded unless a list
    below names the session's listener, client network or user, or `courriel trace --user`
    watches a user; ``enabled`` runs the trace service (its control socket DATA/trace.sock)."""

    enabled: bool = True
    enabled_listeners: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    max_bytes_per_session: int = 1024 * 1024
    max_total_bytes: int = 512 * 1024 * 1024
    retention_days: int = 7
    #: Record message events (delivery, retrievals: the journey of any stored message).
    message_events: bool = True
    #: Delete message events older than this many days (0: keep them while the user exists).
    event_retention_days: int = 0

    def validate(self) -> None:
        from courriel.proxy import parse_networks

        try:
            parse_networks(self.networks, "trace.networks")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for name in ("max_bytes_per_session", "max_total_bytes", "retention_days"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"trace.{name}: must be positive")
        if self.event_retention_days < 0:
            raise ConfigError("trace.event_retention_days: must be 0 or positive")


@dataclass
class Config:
    server: ServerSection = field(default_factory=ServerSection)
    store: StoreSection = field(default_factory=StoreSection)
    tls: TLSSection = field(default_factory=TLSSection)
    acme: AcmeSection = field(default_factory=AcmeSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    quota: QuotaSection = field(default_factory=QuotaSection)
    smtp: SmtpSection = field(default_factory=lambda: SmtpSection(listen="127.0.0.1:2525"))
    submission: AuthListenerSection = _listener(2587, auth=True)
    submissions: ListenerSection = _listener(2465)
    imap: ImapSection = field(default_factory=lambda: ImapSection(listen="127.0.0.1:1143"))
    imaps: ListenerSection = _listener(1993)
    pop3: Pop3Section = field(default_factory=lambda: Pop3Section(listen="127.0.0.1:1110"))
    pop3s: ListenerSection = _listener(1995)
    http: HttpSection = field(default_factory=lambda: HttpSection(listen="127.0.0.1:8080"))
    managesieve: ManageSieveSection = field(
        default_factory=lambda: ManageSieveSection(listen="127.0.0.1:14190")
    )
    spam: SpamSection = field(default_factory=SpamSection)
    lmtp: LmtpSection = field(default_factory=lambda: LmtpSection(listen="127.0.0.1:2424"))
    lookup: LookupSection = field(default_factory=lambda: LookupSection(listen="127.0.0.1:2426"))
    outbound: OutboundSection = field(default_factory=OutboundSection)
    mailauth: MailauthSection = field(default_factory=MailauthSection)
    mta_sts: MtaStsSection = field(default_factory=MtaStsSection)
    jmap: JmapSection = field(default_factory=JmapSection)
    trace: TraceSection = field(default_factory=TraceSection)
    #: The data directory this configuration was loaded from (not a key).
    data_dir: Path = field(default=Path("."), metadata={"internal": True})

    def path(self, rel: str) -> Path:
        """A path from the configuration, relative to the data directory."""
        p = Path(rel)
        return p if p.is_absolute() else self.data_dir / p

    def listeners(self) -> dict[str, ListenerSection]:
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), ListenerSection)
        }


#: Production ports, used by ``courriel init --production``.
PRODUCTION_PORTS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "pop3": 110,
    "pop3s": 995,
    "http": 443,
    "managesieve": 4190,
    "lmtp": 24,  # RFC 2033 §7 (loopback only by default, see lmtp.trusted_networks)
    "lookup": 2426,
}


def _sections() -> dict[str, type[Any]]:
    hints = typing.get_type_hints(Config)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Config)
        if not f.metadata.get("internal")
    }


def _coerce(value: Any, typ: Any, key: str, from_env: bool) -> Any:
    """Check (TOML) or convert (environment string) a value to the field's type."""
    if typ is bool:
        if from_env:
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{key}: {value!r} is not a boolean")
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if typ is int:
        if from_env:
            try:
                return int(value.strip())
            except ValueError:
                raise ConfigError(f"{key}: {value!r} is not an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if from_env:
            try:
                return float(value.strip())
            except ValueError:
                raise ConfigError(f"{key}: {value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    origin = typing.get_origin(typ)
    if origin is list:
        (item,) = typing.get_args(typ)
        if from_env:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item, key, False) for v in value]
    if isinstance(typ, types.UnionType):
        raise ConfigError(f"{key}: unsupported type")  # pragma: no cover - schema bug
    raise ConfigError(f"{key}: unsupported type {typ!r}")  # pragma: no cover


def _build_section(name: str, cls: type[Any], raw: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    section = getattr(Config(), name)
    kwargs: dict[str, Any] = {f: getattr(section, f) for f in fields}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{name}.{key}: unknown key")
        kwargs[key] = _coerce(value, hints[key], f"{name}.{key}", from_env=False)
    for key in fields:
        env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_name in env:
            kwargs[key] = _coerce(env[env_name], hints[key], env_name, from_env=True)
    obj = cls(**kwargs)
    if isinstance(obj, ListenerSection):
        parse_listen(obj.listen, f"{name}.listen")
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def build_config(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, data_dir: Path | None = None
) -> Config:
    """Validate a parsed TOML document plus environment overrides into a :class:`Config`."""
    env = os.environ if env is None else env
    sections = _sections()
    for name, value in raw.items():
        if name not in sections:
            raise ConfigError(f"{name}: unknown section")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a table")
    for var in env:
        if var.startswith(ENV_PREFIX) and var not in ENV_NOT_KEYS:
            rest = var[len(ENV_PREFIX) :]
            sec, _, key = rest.partition("_")
            # A section name may hold "_" itself (mta_sts): the longest known prefix wins.
            for name in sorted(sections, key=len, reverse=True):
                if rest.lower().startswith(name + "_"):
                    sec, key = name, rest[len(name) + 1 :]
                    break
            if sec.lower() not in sections:
                raise ConfigError(f"{var}: unknown section {sec.lower()!r}")
            cls = sections[sec.lower()]
            if key.lower() not in {f.name for f in dataclasses.fields(cls)}:
                raise ConfigError(f"{var}: unknown key {sec.lower()}.{key.lower()}")
    kwargs = {name: _build_section(name, cls, raw.get(name, {}), env) for name, cls in sections.items()}
    cfg = Config(**kwargs)
    _check_proxy_protocol(cfg)
    if data_dir is not None:
        cfg.data_dir = data_dir
    return cfg


def _check_proxy_protocol(cfg: Config) -> None:
    """PROXY listeners need trusted proxies; the http listener takes X-Forwarded-For instead."""
    if cfg.http.proxy_protocol:
        raise ConfigError(
            "http.proxy_protocol: not supported; HTTP proxies pass the client address in "
            "X-Forwarded-For, trusted from server.trusted_proxies"
        )
    for name, section in cfg.listeners().items():
        if section.proxy_protocol and not cfg.server.trusted_proxies:
            raise ConfigError(f"{name}.proxy_protocol: needs server.trusted_proxies")


def load_config(data_dir: Path, env: Mapping[str, str] | None = None) -> Config:
    """Load ``data_dir/courriel.toml`` (which must exist) with environment overrides."""
    path = data_dir / CONFIG_FILE
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no configuration (run 'courriel init {data_dir}')") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return build_config(raw, env, data_dir=data_dir.resolve())


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def render_config(cfg: Config) -> str:
    """The TOML text of a configuration, every key written out (for ``init``)."""
    lines = ["# courriel configuration. Every key can be overridden by COURRIEL_<SECTION>_<KEY>.", ""]
    for name in _sections():
        lines.append(f"[{name}]")
        section = getattr(cfg, name)
        for f in dataclasses.fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)
