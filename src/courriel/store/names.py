"""Mailbox names, addresses and keywords: validation and normalisation shared by backends."""

from __future__ import annotations

from courriel.store.api import DELIMITER, INBOX, MAX_KEYWORD, MAX_MAILBOX_NAME, InvalidName

# RFC 9051 §9 atom-specials that may not appear in a flag keyword.
_KEYWORD_FORBIDDEN = set('(){ %*"\\]') | {chr(c) for c in range(0x20)} | {"\x7f"}


def normalize_mailbox(name: str) -> str:
    """Check a mailbox name and give INBOX (any case, also as a parent) its canonical form."""
    if not name or len(name) > MAX_MAILBOX_NAME:
        raise InvalidName("mailbox name empty or too long")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise InvalidName("control character in mailbox name")
    if name.startswith(DELIMITER) or name.endswith(DELIMITER) or DELIMITER * 2 in name:
        raise InvalidName("empty hierarchy level in mailbox name")
    if "*" in name or "%" in name:
        raise InvalidName("wildcards are not allowed in mailbox names")
    first, sep, rest = name.partition(DELIMITER)
    if first.upper() == INBOX:
        return INBOX + sep + rest
    return name


def new_mailbox_name(name: str) -> str:
    """:func:`normalize_mailbox` for a name being created (CREATE, RENAME's new name): also
    no "." or ".." hierarchy level. Clients and exports map names to directories (Maildir,
    mbsync: CVE-2021-20247); such a level would climb out of them. Existing names stay
    reachable (lookups use normalize_mailbox)."""
    name = normalize_mailbox(name)
    if any(level in (".", "..") for level in name.split(DELIMITER)):
        raise InvalidName('"." and ".." are not allowed as mailbox name levels')
    return name


def parents(name: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b']."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def is_inferior(name: str, of: str) -> bool:
    return name.startswith(of + DELIMITER)


def normalize_address(address: str) -> str:
    """Lower-case the domain; keep the local part as given (RFC 5321 §2.4), trim spaces."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not domain or "@" in domain or any(c.isspace() for c in address):
        raise InvalidName(f"not an address: {address!r}")
    if len(address) > 320:
        raise InvalidName("address too long")
    return f"{local}@{domain.lower()}"


def normalize_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    labels = domain.split(".")
    if not domain or len(domain) > 253 or any(not lab or len(lab) > 63 for lab in labels):
        raise InvalidName(f"not a domain name: {domain!r}")
    if any(c.isspace() or c in "@/\\" for c in domain):
        raise InvalidName(f"not a domain name: {domain!r}")
    return domain


def check_keyword(keyword: str) -> str:
    if not keyword or len(keyword) > MAX_KEYWORD or any(c in _KEYWORD_FORBIDDEN for c in keyword):
        raise InvalidName(f"invalid keyword {keyword!r}")
    return keyword


def encode_keywords(keywords: frozenset[str]) -> str:
    """Keywords as stored: ' a b ' (sorted, space-delimited) so SQL can test ' k ' in it."""
    if not keywords:
        return ""
    return " " + " ".join(sorted(check_keyword(k) for k in keywords)) + " "


def decode_keywords(text: str) -> frozenset[str]:
    return frozenset(text.split()) if text else frozenset()
