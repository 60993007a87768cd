"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §2.1, §2.2): pure functions from
message facts to a thread tree, and the tree to the THREAD response syntax."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Msg:
    """What threading needs of one message; ``order`` ranks it in the mailbox (its UID)."""

    number: int  # what the response shows: a sequence number or a UID
    order: int
    date: float  # sent date (internal date when the Date field is unusable), UTC seconds
    base_subject: str  # RFC 5256 §2.1, casefolded
    is_reply: bool  # the subject had Re:/Fwd: and the like before the base subject
    message_id: str | None
    references: tuple[str, ...]  # References, else the first In-Reply-To id


@dataclass(slots=True, eq=False)
class Node:
    msg: Msg | None = None  # None: a dummy (RFC 5256 §2.2)
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def key(self) -> tuple[float, int]:
        """Sort key: the message's date, or a dummy's first child's (RFC 5256 §2.2 (4))."""
        if self.msg is not None:
            return (self.msg.date, self.msg.order)
        return self.children[0].key() if self.children else (0.0, 0)

    def add(self, child: Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)


def ordered_subject(msgs: Sequence[Msg]) -> list[Node]:
    """RFC 5256 §2.1: threads of equal base subject; each thread's first message (by sent
    date) is the parent of all the others; threads ordered by their first message's date."""
    groups: dict[str, list[Msg]] = {}
    for m in sorted(msgs, key=lambda m: (m.base_subject, m.date, m.order)):
        groups.setdefault(m.base_subject, []).append(m)
    roots = []
    for members in groups.values():
        root = Node(members[0])
        for m in members[1:]:
            root.add(Node(m))
        roots.append(root)
    roots.sort(key=Node.key)
    return roots


def references(msgs: Sequence[Msg]) -> list[Node]:
    """RFC 5256 §2.2 REFERENCES."""
    table: dict[str, Node] = {}
    for m in sorted(msgs, key=lambda m: m.order):
        mid = m.message_id
        if mid is None or (mid in table and table[mid].msg is not None):
            mid = f"\0unique-{m.order}"  # no or duplicate Message-ID: a unique one (§2.2 (1))
        node = table.get(mid)
        if node is None:
            node = table[mid] = Node()
        node.msg = m
        # (1)(B): link the references in order, without changing existing links or looping.
        prev: Node | None = None
        for ref in m.references:
            cur = table.get(ref)
            if cur is None:
                cur = table[ref] = Node()
            if prev is not None and cur.parent is None and not _reachable(cur, prev) and cur is not prev:
                prev.add(cur)
            prev = cur
        # (1)(C): the message's parent is its last reference (replacing any earlier link).
        if prev is not None and prev is not node and not _reachable(node, prev):
            prev.add(node)
        elif prev is None and node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
    roots = [n for n in table.values() if n.parent is None]
    roots = _prune(roots, top=True)
    _sort(roots)
    roots = _merge_subjects(roots)
    _sort(roots)
    return roots


def _reachable(start: Node, target: Node) -> bool:
    """Whether ``target`` is ``start`` or one of its descendants (a link would loop)."""
    stack = [start]
    while stack:
        n = stack.pop()
        if n is target:
            return True
        stack.extend(n.children)
    return False


def _prune(nodes: list[Node], top: bool) -> list[Node]:
    """RFC 5256 §2.2 (3): drop empty dummies, promote a dummy's children (at the top level
    only when it has a single child)."""
    out: list[Node] = []
    for n in nodes:
        n.children = _prune(n.children, top=False)
        for c in n.children:
            c.parent = n
        if n.msg is None:
            if not n.children:
                continue
            if not top or len(n.children) == 1:
                for c in n.children:
                    c.parent = n.parent
                out.extend(n.children)
                continue
        out.append(n)
    return out


def _sort(nodes: list[Node]) -> None:
    nodes.sort(key=Node.key)
    for n in nodes:
        _sort(n.children)


def _first(node: Node) -> Msg | None:
    return node.msg if node.msg is not None else (node.children[0].msg if node.children else None)


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """RFC 5256 §2.2 (5): gather top-level threads that share a base subject."""
    subjects: dict[str, Node] = {}
    for r in roots:
        m = _first(r)
        if m is None or not m.base_subject:
            continue
        old = subjects.get(m.base_subject)
        old_m = _first(old) if old is not None else None
        if old is None or (r.msg is None and old.msg is not None) or (
            old_m is not None and old_m.is_reply and not m.is_reply and old.msg is not None and r.msg is not None
        ):
            subjects[m.base_subject] = r
    out: list[Node] = []
    for r in roots:
        m = _first(r)
        target = subjects.get(m.base_subject) if m is not None and m.base_subject else None
        if target is None or target is r:
            out.append(r)
            continue
        if target.msg is None and r.msg is None:
            for c in list(r.children):
                target.add(c)
        elif target.msg is None:
            target.add(r)
        elif r.msg is None:
            # the dummy r becomes the thread: the table's message joins it
            subjects[m.base_subject] = r  # type: ignore[union-attr]
            r.add(target)
            out = [x for x in out if x is not target]
            out.append(r)
        elif target.msg is not None and not target.msg.is_reply and r.msg.is_reply:
            target.add(r)
        else:
            dummy = Node()
            out = [x for x in out if x is not target]
            dummy.add(target)
            dummy.add(r)
            subjects[m.base_subject] = dummy  # type: ignore[union-attr]
            out.append(dummy)
    return out


def render(roots: Sequence[Node]) -> bytes:
    """The THREAD response data: "(1 2 (3)(4 5))(6)" (RFC 5256 §4)."""
    return b"".join(b"(" + _render(r) + b")" for r in roots)


def _render(node: Node) -> bytes:
    parts: list[bytes] = []
    n = node
    while n.msg is not None and len(n.children) == 1:
        parts.append(b"%d" % n.msg.number)
        n = n.children[0]
    if n.msg is not None:
        parts.append(b"%d" % n.msg.number)
    text = b" ".join(parts)
    if n.children and (n.msg is None or len(n.children) > 1):
        kids = b"".join(b"(" + _render(c) + b")" for c in n.children)
        text = text + b" " + kids if text else kids
    return text


ALGORITHMS: dict[str, Callable[[Sequence[Msg]], list[Node]]] = {
    "ORDEREDSUBJECT": ordered_subject,
    "REFERENCES": references,
}
