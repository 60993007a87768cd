"""The account file: ``~/.config/courriel/accounts.toml`` (``$XDG_CONFIG_HOME`` honoured,
``--config`` or ``$COURRIEL_MAIL_CONFIG`` first), written with mode 0600.

    [accounts.work]
    address = "Alice Martin <alice@example.org>"
    user = "alice@example.org"
    imap = "imap.example.org:993"     imap_tls = "tls"       # tls | starttls | none
    smtp = "smtp.example.org:587"     smtp_tls = "starttls"
    pop3 = "pop.example.org:995"      pop3_tls = "tls"
    password_env = "WORK_PASSWORD"    # or password_command = "pass show work"
    ca_file = "/path/to/ca-or-self-signed.pem"

The password is never stored here: it comes from the environment variable named by
``password_env``, else the first line printed by ``password_command``, else a prompt.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ClientError

TLS_MODES = ("tls", "starttls", "none")
SERVICES = ("imap", "smtp", "pop3")
# Default ports per (service, TLS mode): RFC 8314 §3.3 (implicit TLS), RFC 6409 (submission).
DEFAULT_PORTS = {
    ("imap", "tls"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
    ("smtp", "tls"): 465, ("smtp", "starttls"): 587, ("smtp", "none"): 587,
    ("pop3", "tls"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110,
}  # fmt: skip
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PASSWORD_COMMAND_TIMEOUT = 60


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int
    tls: str  # "tls" (implicit), "starttls" or "none"

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.tls})"


def parse_server(service: str, value: str, tls: str | None) -> Server:
    """``host`` or ``host:port`` (``[v6]:port``) with a TLS mode; the port follows the mode."""
    mode = (tls or "").lower() or None
    if mode is not None and mode not in TLS_MODES:
        raise ClientError(f"{service}: TLS mode must be one of {', '.join(TLS_MODES)}, not {tls!r}")
    host, port_text = value.strip(), ""
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        host, port_text = inner, rest.removeprefix(":")
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
    if not host:
        raise ClientError(f"{service}: no host name in {value!r}")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ClientError(f"{service}: bad port in {value!r}")
        port = int(port_text)
    if mode is None:  # guess the mode from the port: 993, 465 and 995 are implicit TLS,
        # and so are courriel's development ports for them (1993, 2465, 1995)
        mode = "tls" if port in (None, 993, 465, 995, 1993, 2465, 1995) else "starttls"
    return Server(host, port or DEFAULT_PORTS[(service, mode)], mode)


@dataclass(slots=True)
class Account:
    name: str
    address: str  # "Name <addr>" or "addr"
    user: str = ""
    imap: Server | None = None
    smtp: Server | None = None
    pop3: Server | None = None
    password_env: str = ""
    password_command: str = ""
    ca_file: str = ""
    maildir: str = ""
    sent_folder: str = ""
    drafts_folder: str = ""
    charset: str = "utf-8"
    _password: str | None = field(default=None, repr=False, compare=False)

    @property
    def email(self) -> str:
        """The bare address (``alice@example.org``)."""
        from courriel.mime import parse_addresses

        found = parse_addresses(self.address)
        return found[0][1] if found else self.address.strip()

    @property
    def login(self) -> str:
        return self.user or self.email

    def server(self, service: str) -> Server:
        srv: Server | None = getattr(self, service)
        if srv is None:
            raise ClientError(f"account {self.name!r} has no {service} server "
                              f"(courriel mail account add {self.name} --{service} HOST[:PORT])")  # fmt: skip
        return srv

    def password(self) -> str:
        """The password, asked for once per command run; never stored in the file."""
        if self._password is None:
            self._password = self._find_password()
        return self._password

    def _find_password(self) -> str:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is not None:
                return value
            if not self.password_command:
                raise ClientError(f"account {self.name!r}: environment variable {self.password_env} is not set")
        if self.password_command:
            try:
                proc = subprocess.run(self.password_command, shell=True, capture_output=True,
                                      text=True, timeout=_PASSWORD_COMMAND_TIMEOUT)  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ClientError(f"account {self.name!r}: password_command failed: {exc}") from None
            if proc.returncode != 0:
                raise ClientError(f"account {self.name!r}: password_command exited with status {proc.returncode}")
            return proc.stdout.partition("\n")[0].rstrip("\r")
        if not sys.stdin.isatty():
            raise ClientError(f"account {self.name!r}: no password (set password_env or "
                              "password_command, or run on a terminal to be asked)")  # fmt: skip
        return getpass.getpass(f"Password for {self.login} ({self.name}): ")

    def to_table(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {"address": self.address}
        for f in fields(self):
            if f.name in ("name", "address", "_password"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, Server):
                out[f.name] = f"[{value.host}]:{value.port}" if ":" in value.host else f"{value.host}:{value.port}"
                out[f"{f.name}_tls"] = value.tls
            elif value and not (f.name == "charset" and value == "utf-8"):
                out[f.name] = value
        return out

    @classmethod
    def from_table(cls, name: str, table: dict[str, object]) -> Account:
        def text(key: str, default: str = "") -> str:
            value = table.get(key, default)
            if not isinstance(value, str):
                raise ClientError(f"account {name!r}: {key} must be a string")
            return value

        known = {f.name for f in fields(cls)} | {f"{s}_tls" for s in SERVICES}
        unknown = sorted(set(table) - known - {"name", "_password"})
        if unknown:
            raise ClientError(f"account {name!r}: unknown key(s) {', '.join(unknown)}")
        if not text("address"):
            raise ClientError(f"account {name!r}: address is required")
        servers = {s: parse_server(s, text(s), text(f"{s}_tls") or None) if text(s) else None for s in SERVICES}
        return cls(
            name=name, address=text("address"), user=text("user"),
            imap=servers["imap"], smtp=servers["smtp"], pop3=servers["pop3"],
            password_env=text("password_env"), password_command=text("password_command"),
            ca_file=text("ca_file"), maildir=text("maildir"), sent_folder=text("sent_folder"),
            drafts_folder=text("drafts_folder"), charset=text("charset", "utf-8"),
        )  # fmt: skip


def config_path(flag: str | None) -> Path:
    """--config, then $COURRIEL_MAIL_CONFIG, then $XDG_CONFIG_HOME (else ~/.config)/courriel."""
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get("COURRIEL_MAIL_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "courriel" / "accounts.toml"


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML


@dataclass(slots=True)
class AccountFile:
    path: Path
    accounts: dict[str, Account] = field(default_factory=dict)
    default: str = ""

    @classmethod
    def load(cls, path: Path) -> AccountFile:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from None
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ClientError(f"{path}: {exc}") from None
        tables = doc.get("accounts", {})
        default = doc.get("default", "")
        if not isinstance(tables, dict) or not isinstance(default, str):
            raise ClientError(f"{path}: [accounts.NAME] tables and a default name expected")
        out = cls(path, default=default)
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ClientError(f"{path}: accounts.{name} must be a table")
            out.accounts[name] = Account.from_table(name, table)
        return out

    def save(self) -> None:
        lines = ["# courriel mail accounts (passwords are never stored here)\n"]
        if self.default:
            lines.append(f"default = {_toml_value(self.default)}\n")
        for name, account in self.accounts.items():
            lines.append(f"\n[accounts.{_toml_key(name)}]\n")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in account.to_table().items()]
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def get(self, name: str | None) -> Account:
        if not self.accounts:
            raise ClientError(f"no accounts in {self.path} (courriel mail account add NAME --address ADDR ...)")
        if name is None:
            name = self.default or next(iter(self.accounts))
        try:
            return self.accounts[name]
        except KeyError:
            raise ClientError(f"no account {name!r} in {self.path} "
                              f"(known: {', '.join(self.accounts)})") from None  # fmt: skip


def state_dir(config: Path) -> Path:
    """Where per-account state (seen UIDLs, IMAP positions) lives: beside the account file
    for an explicit --config, else $XDG_STATE_HOME/courriel (~/.local/state/courriel)."""
    default = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "courriel" / "accounts.toml"
    if config != default:
        return config.parent / (config.stem + "-state")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "courriel"


def shell_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ClientError(f"cannot parse {text!r}: {exc}") from None
