"""Comparators (RFC 4790 as used by RFC 5228 §2.7.3) and match types (RFC 5228 §2.7.1,
RFC 5231 relational :value/:count). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from courriel.sieve.grammar import Arg

_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Matcher:
    """How a test compares: match type (is, contains, matches, value, count), relation and comparator."""

    kind: str
    relation: str
    comparator: str

    @classmethod
    def from_tags(cls, tags: dict[str, Arg | None]) -> Matcher:
        comparator = str(tags.get("comparator") or "i;ascii-casemap").lower()
        for kind in ("is", "contains", "matches"):
            if kind in tags:
                return cls(kind, "", comparator)
        for kind in ("value", "count"):
            if kind in tags:
                return cls(kind, str(tags[kind]).lower(), comparator)
        return cls("is", "", comparator)

    def test(self, values: Sequence[str], keys: Sequence[str]) -> tuple[bool, list[str]]:
        """Whether any value matches any key; with :matches, the wildcard captures of the first
        match (RFC 5229 §3.2: ${0} the whole value, ${1}... each wildcard)."""
        if self.kind == "count":
            # RFC 5231 §4.2: the number of values, compared numerically as a string.
            count = str(len(values))
            return any(_relate(self.relation, compare(self.comparator, count, key)) for key in keys), []
        for value in values:
            for key in keys:
                if self.kind == "is":
                    if compare(self.comparator, value, key) == 0:
                        return True, []
                elif self.kind == "contains":
                    if _contains(self.comparator, value, key):
                        return True, []
                elif self.kind == "matches":
                    fold = self.comparator == "i;ascii-casemap"
                    # The linear check first: the backtracking regex only runs (for the
                    # captures) on a value known to match, so no script can make it explode.
                    if not wildcard_match(_casemap(key) if fold else key, _casemap(value) if fold else value):
                        continue
                    m = _glob(key, fold).fullmatch(value)
                    if m is not None:
                        return True, [value, *m.groups()]
                elif _relate(self.relation, compare(self.comparator, value, key)):
                    return True, []
        return False, []


def _casemap(s: str) -> str:
    # i;ascii-casemap folds ASCII letters only.
    return s.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _numeric(s: str) -> int | None:
    """i;ascii-numeric: the leading digits; none means positive infinity (RFC 4790 §9.1)."""
    m = _DIGITS.match(s)
    return int(m.group()) if m else None


def compare(comparator: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b``."""
    if comparator == "i;ascii-numeric":
        x, y = _numeric(a), _numeric(b)
        if x is None or y is None:
            return 0 if x is None and y is None else (1 if x is None else -1)
        return (x > y) - (x < y)
    if comparator == "i;ascii-casemap":
        a, b = _casemap(a), _casemap(b)
    ab, bb = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    return (ab > bb) - (ab < bb)


def _contains(comparator: str, value: str, key: str) -> bool:
    if comparator == "i;ascii-casemap":
        return _casemap(key) in _casemap(value)
    return key in value  # i;ascii-numeric does not support substring (RFC 4790 §9.1); treat as octet


def _relate(relation: str, cmp: int) -> bool:
    return {
        "gt": cmp > 0, "ge": cmp >= 0, "lt": cmp < 0, "le": cmp <= 0, "eq": cmp == 0, "ne": cmp != 0,
    }[relation]  # fmt: skip


@lru_cache(maxsize=256)
def _glob(key: str, fold: bool) -> re.Pattern[str]:
    """RFC 5228 §2.7.1 :matches: ``*`` any sequence, ``?`` one character, ``\\`` escapes.

    Each wildcard is a group, ``*`` non-greedy as RFC 5229 §3.2 asks."""
    out: list[str] = []
    i = 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key):
            out.append(re.escape(key[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append("(.*?)")
        elif c == "?":
            out.append("(.)")
        else:
            out.append(re.escape(c))
        i += 1
    pattern = "".join(out)
    if fold:
        # ASCII case folding only: (?i) with re.ASCII folds just ASCII letters.
        return re.compile(pattern, re.DOTALL | re.IGNORECASE | re.ASCII)
    return re.compile(pattern, re.DOTALL)


def wildcard_match(key: str, value: str) -> bool:
    """:matches without captures, in O(len(key) * len(value)) at worst (no backtracking blowup)."""
    tokens: list[str] = []  # single characters, "*" and "?" as wildcards, escaped ones as "\\c"
    i = 0
    while i < len(key):
        if key[i] == "\\" and i + 1 < len(key):
            tokens.append("\\" + key[i + 1])
            i += 2
        else:
            tokens.append(key[i])
            i += 1
    t = v = 0
    star_t, star_v = -1, 0
    while v < len(value):
        if t < len(tokens) and (tokens[t] == "?" or _lit(tokens[t]) == value[v]):
            t += 1
            v += 1
        elif t < len(tokens) and tokens[t] == "*":
            star_t, star_v = t, v
            t += 1
        elif star_t >= 0:
            star_v += 1
            t, v = star_t + 1, star_v
        else:
            return False
    while t < len(tokens) and tokens[t] == "*":
        t += 1
    return t == len(tokens)


def _lit(token: str) -> str | None:
    if token in ("*", "?"):
        return None
    return token[1] if len(token) == 2 and token[0] == "\\" else token
