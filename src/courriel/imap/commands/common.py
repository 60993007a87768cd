"""Helpers shared by the selected-state commands."""

from __future__ import annotations

from courriel.imap.errors import Bad
from courriel.imap.protocol.types import STAR, SeqSet
from courriel.imap.selected import Selected
from courriel.imap.session import Session


def selected(s: Session) -> Selected:
    sel = s.selected
    assert sel is not None
    return sel


def resolve(sel: Selected, seqset: SeqSet, uid: bool) -> list[int]:
    """The UIDs (ascending) a sequence set names in this session."""
    if seqset.saved:  # RFC 5182: "$" is the saved search result, in both forms
        return [u for u in sel.saved if sel.seq_of(u)]
    if uid:
        return seqset.select(sel.uids)
    count = sel.exists
    # RFC 9051 §9 (seq-number): a number beyond the mailbox, or "*" in an empty one, is BAD.
    if any((lo != STAR and lo > count) or (hi != STAR and hi > count) for lo, hi in seqset.ranges) or (
        count == 0 and seqset.ranges
    ):
        raise Bad("invalid message sequence number")
    uids = sel.uids
    return [uids[i - 1] for i in seqset.indexes(count)]
