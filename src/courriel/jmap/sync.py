"""/changes from MODSEQs (RFC 8620 §5.2), for any type whose objects have "lives".

An object (an Email, a Mailbox, a Thread) is made of lives: each copy of a message, each
mailbox row, appears at a MODSEQ (``created``; 0 when unknown: before tracking began) and
was last changed or removed at ``modseq``. An object existed at state M when one of its
lives was created at or before M and not removed by then. Between states S and M, an object
whose lives moved is created, updated or destroyed by comparing existence at S and at M.

With ``max_changes``, M is the largest MODSEQ at which at most that many objects changed;
an object whose last change falls after M shows up in the next call (as updated, or created
when it did not exist at M), so a client that follows ``hasMoreChanges`` converges.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from courriel.jmap.core import MethodError

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Life:
    created: int
    modseq: int
    removed: bool = False


@dataclass
class Changes(Generic[K]):
    old_state: int
    new_state: int
    has_more: bool
    created: list[K] = field(default_factory=list)
    updated: list[K] = field(default_factory=list)
    destroyed: list[K] = field(default_factory=list)


def _existed(lives: Sequence[Life], at: int) -> bool:
    return any(life.created <= at and not (life.removed and life.modseq <= at) for life in lives)


def _touched(lives: Sequence[Life], since: int, upto: int) -> bool:
    return any(since < life.modseq <= upto or since < life.created <= upto for life in lives)


def compute(objects: Mapping[K, Sequence[Life]], since: int, current: int, max_changes: int | None) -> Changes[K]:
    """Classify every object in ``objects`` (those whose lives moved after ``since``)."""
    upto = current
    moved = [k for k, lives in objects.items() if _touched(lives, since, upto)]
    has_more = False
    if max_changes is not None and len(moved) > max_changes:
        points = sorted(
            {p for lives in objects.values() for life in lives for p in (life.created, life.modseq) if since < p <= current}
        )
        best = None
        for point in points:
            count = sum(1 for lives in objects.values() if _touched(lives, since, point))
            if count > max_changes:
                break
            best = point
        if best is None:
            raise MethodError("cannotCalculateChanges", "too many changes at one MODSEQ for maxChanges")
        upto, has_more = best, True
        moved = [k for k, lives in objects.items() if _touched(lives, since, upto)]
    out: Changes[K] = Changes(since, upto, has_more)
    for key in moved:
        lives = objects[key]
        was, now = _existed(lives, since), _existed(lives, upto)
        if was and now:
            out.updated.append(key)
        elif now:
            out.created.append(key)
        elif was:
            out.destroyed.append(key)
    return out


def parse_max_changes(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise MethodError("invalidArguments", "maxChanges must be a positive integer")
    return value
