"""Header fields in JMAP's parsed forms (RFC 8621 §4.1.2) and ``header:`` properties (§4.1.3).

Pure functions over (name, raw value) pairs as :func:`courriel.mime.headers.scan_header`
returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from courriel.mime.address import parse_address_list
from courriel.mime.charset import surrogates_to_text
from courriel.mime.headers import decode_header_value, parse_date, parse_msg_ids, unfold

FORMS = ("Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs")
_ADDRESS = {"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc"}
_IDS = {"message-id", "in-reply-to", "references", "resent-message-id"}
_DATES = {"date", "resent-date"}
_URLS = {"list-help", "list-unsubscribe", "list-subscribe", "list-post", "list-owner", "list-archive"}
_TEXT = {"subject", "comments", "keywords", "list-id"}


@dataclass(frozen=True, slots=True)
class HeaderProperty:
    name: str  # as requested (case kept for the response key)
    form: str
    all: bool


def parse_property(prop: str) -> HeaderProperty | None:
    """``header:{name}[:as{Form}][:all]``; None when malformed or the form is not allowed
    for that field (§4.1.2: e.g. asAddresses only on address fields)."""
    parts = prop.split(":")
    if len(parts) < 2 or parts[0] != "header" or not parts[1] or len(parts) > 4:
        return None
    name, rest = parts[1], parts[2:]
    if any(c in name for c in " \t\r\n") or not name.isascii():
        return None
    all_ = bool(rest) and rest[-1] == "all"
    if all_:
        rest = rest[:-1]
    form = "Raw"
    if rest:
        if not rest[0].startswith("as") or rest[0][2:] not in FORMS:
            return None
        form = rest[0][2:]
    if not form_allowed(name.lower(), form):
        return None
    return HeaderProperty(name, form, all_)


def form_allowed(lname: str, form: str) -> bool:
    if form == "Raw":
        return True
    known = _ADDRESS | _IDS | _DATES | _URLS | _TEXT
    if lname not in known:
        return True  # other fields: any form may be asked for
    if form == "Text":
        return lname in _TEXT
    if form in ("Addresses", "GroupedAddresses"):
        return lname in _ADDRESS
    if form == "MessageIds":
        return lname in _IDS
    if form == "Date":
        return lname in _DATES
    return lname in _URLS


def utc_date(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_date(value: datetime | None) -> str | None:
    """RFC 3339 with the original offset (JMAP ``Date``)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def as_text(raw: str) -> str:
    return surrogates_to_text(decode_header_value(unfold(raw))).strip()


def as_addresses(raw: str) -> list[dict[str, Any]]:
    out = []
    for a in parse_address_list(raw):
        if a.host is None:  # group start/end markers
            continue
        out.append(address_json(a.name, a.mailbox, a.host))
    return out


def address_json(name: str | None, mailbox: str | None, host: str | None) -> dict[str, Any]:
    email = f"{mailbox or ''}@{host}" if host else mailbox or ""
    decoded = surrogates_to_text(decode_header_value(name)).strip() if name else ""
    return {"name": decoded or None, "email": surrogates_to_text(email)}


def as_grouped(raw: str) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for a in parse_address_list(raw):
        if a.host is None and a.mailbox is not None:  # group start: name in mailbox
            current = {"name": as_text(a.mailbox) or None, "addresses": []}
            groups.append(current)
        elif a.host is None:  # group end
            current = None
        else:
            addr = address_json(a.name, a.mailbox, a.host)
            if current is None:
                if not groups or groups[-1]["name"] is not None:
                    groups.append({"name": None, "addresses": []})
                groups[-1]["addresses"].append(addr)
            else:
                current["addresses"].append(addr)
    return groups


def as_urls(raw: str) -> list[str] | None:
    urls = []
    for item in unfold(raw).split(","):
        item = item.strip()
        if item.startswith("<") and ">" in item:
            urls.append(item[1 : item.index(">")].strip())
    return urls or None


def parse_form(raw: str, form: str) -> Any:
    if form == "Raw":
        return surrogates_to_text(raw)
    if form == "Text":
        return as_text(raw)
    if form == "Addresses":
        return as_addresses(raw)
    if form == "GroupedAddresses":
        return as_grouped(raw)
    if form == "MessageIds":
        # Raw 8-bit octets (surrogateescape) must not reach the JSON response as surrogates.
        return parse_msg_ids(surrogates_to_text(raw)) or None
    if form == "Date":
        return local_date(parse_date(raw))
    return as_urls(surrogates_to_text(raw))


def header_value(fields: list[tuple[str, str]], prop: HeaderProperty) -> Any:
    lname = prop.name.lower()
    values = [parse_form(raw, prop.form) for name, raw in fields if name.lower() == lname]
    if prop.all:
        return values
    return values[-1] if values else None  # §4.1.3: the last instance


def raw_headers(fields: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": surrogates_to_text(raw)} for name, raw in fields]
