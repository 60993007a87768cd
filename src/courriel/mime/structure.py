"""The parsed shape of a message: IMAP ENVELOPE and BODYSTRUCTURE, with byte offsets.

This is what delivery stores (as JSON) so that IMAP FETCH and JMAP never re-parse.

Invariants:
- Every string comes from the raw octets decoded as UTF-8 with ``surrogateescape``:
  ``s.encode("utf-8", "surrogateescape")`` gives the exact octets back. The JSON codec
  uses ``ensure_ascii`` so these lone surrogates survive a round trip.
- Offsets index the raw message given to the parser: for every part,
  ``header_start <= body_start <= end``; ``data[header_start:body_start]`` is the part's
  header including its terminating empty line (IMAP ``BODY[n.MIME]``, RFC 9051 §6.4.5),
  ``data[body_start:end]`` its body (``BODY[n]``), ``end - body_start == size``.
- The root part's header is the message header (``BODY[HEADER]``). For message/rfc822
  and message/global parts, ``message`` is the encapsulated message's root part, whose
  header and body give ``BODY[n.HEADER]`` and ``BODY[n.TEXT]``.
- A multipart part always has at least one child.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

Params = list[tuple[str, str]]


class Address(NamedTuple):
    """One IMAP ENVELOPE address (RFC 9051 §7.5.2): name, adl, mailbox, host.

    Group start: mailbox = group name, host = None; group end: mailbox = host = None.
    """

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


class Envelope(NamedTuple):
    """IMAP ENVELOPE: raw (unfolded, not decoded) header values; None when absent.

    Address lists are None when absent or empty; sender and reply_to default to from_
    (RFC 3501 §7.4.2).
    """

    date: str | None
    subject: str | None
    from_: list[Address] | None
    sender: list[Address] | None
    reply_to: list[Address] | None
    to: list[Address] | None
    cc: list[Address] | None
    bcc: list[Address] | None
    in_reply_to: str | None
    message_id: str | None


EMPTY_ENVELOPE = Envelope(None, None, None, None, None, None, None, None, None, None)


@dataclass(slots=True, eq=True)
class BodyPart:
    """One node of BODYSTRUCTURE (RFC 9051 §7.5.2), with its offsets in the raw message.

    ``type``/``subtype``/``encoding``/``disposition`` keep their case as written;
    compare with the ``*_lower`` helpers. ``params`` are decoded for JMAP (names
    lower-cased, RFC 2231 continuations merged and charset-decoded, RFC 2047 words in
    values decoded); ``imap_params`` are what IMAP sends (names as written, continuations
    merged, RFC 2231 extended values left encoded as ``name*`` = ``charset'lang'%XX``).
    """

    type: str
    subtype: str
    params: Params = field(default_factory=list)
    imap_params: Params = field(default_factory=list)
    id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    size: int = 0
    lines: int | None = None
    md5: str | None = None
    disposition: str | None = None
    disposition_params: Params = field(default_factory=list)
    disposition_imap_params: Params = field(default_factory=list)
    language: list[str] | None = None
    location: str | None = None
    header_start: int = 0
    body_start: int = 0
    end: int = 0
    children: list[BodyPart] = field(default_factory=list)
    envelope: Envelope | None = None
    message: BodyPart | None = None

    @property
    def mime_type(self) -> str:
        """Lower-case "type/subtype"."""
        return f"{self.type}/{self.subtype}".lower()

    @property
    def type_lower(self) -> str:
        return self.type.lower()

    @property
    def subtype_lower(self) -> str:
        return self.subtype.lower()

    @property
    def encoding_lower(self) -> str:
        return self.encoding.lower()

    @property
    def disposition_lower(self) -> str | None:
        return None if self.disposition is None else self.disposition.lower()

    @property
    def is_multipart(self) -> bool:
        return bool(self.children)

    @property
    def is_message(self) -> bool:
        """True for message/rfc822 and message/global parts whose content was parsed."""
        return self.message is not None

    def param(self, name: str) -> str | None:
        """A decoded Content-Type parameter by (case-insensitive) name."""
        name = name.lower()
        for k, v in self.params:
            if k == name:
                return v
        return None

    @property
    def charset(self) -> str | None:
        return self.param("charset")

    @property
    def filename(self) -> str | None:
        """Content-Disposition filename, else Content-Type name (both decoded)."""
        for k, v in self.disposition_params:
            if k == "filename":
                return v
        return self.param("name")

    def part_at(self, section: tuple[int, ...]) -> BodyPart | None:
        """The part numbered ``section`` (RFC 9051 §6.4.5) in the message rooted here.

        ``()`` is the root; a non-multipart message has only part 1, its body; a part
        number inside a message/rfc822 part counts the parts of the encapsulated message.
        """
        container: BodyPart | None = self
        part: BodyPart = self
        for n in section:
            if container is None:
                return None
            if container.children:
                if not 1 <= n <= len(container.children):
                    return None
                part = container.children[n - 1]
            elif n == 1:
                part = container
            else:
                return None
            container = part if part.children else part.message
        return part

    def walk(self) -> Iterator[tuple[tuple[int, ...], BodyPart]]:
        """Every (section, part) of the message rooted here, in order, root first as ()."""
        yield (), self
        yield from _walk_container(self, ())


def _walk_container(
    container: BodyPart, prefix: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], BodyPart]]:
    if container.children:
        for i, child in enumerate(container.children, 1):
            section = (*prefix, i)
            yield section, child
            inner = child if child.children else child.message
            if inner is not None:
                yield from _walk_container(inner, section)
    else:
        section = (*prefix, 1)
        yield section, container
        if container.message is not None:
            yield from _walk_container(container.message, section)


# JSON codec. Compact positional lists; json.dumps(ensure_ascii=True) escapes lone
# surrogates as \udcXX and json.loads restores them, so the round trip is exact.
#
# envelope: [date, subject, from, sender, reply_to, to, cc, bcc, in_reply_to, message_id]
#           with each address list null or [[name, adl, mailbox, host], ...]; sender and
#           reply_to are 0 when equal to from (the usual case)
# body:     [type, subtype, params, imap_params, id, description, encoding, size, lines,
#            md5, disposition, disposition_params, disposition_imap_params, language,
#            location, header_start, body_start, end, children, envelope, message]
#           params are [[name, value], ...]; imap_params are null when equal to params;
#           children is [] or a list of bodies; envelope is an envelope list or null;
#           message is a body list or null.

# tuple.__new__ bound to the class skips NamedTuple's length check: decoding speed
# matters (FETCH ENVELOPE of a whole mailbox), and our own encoder wrote the lists.
_make_address = functools.partial(tuple.__new__, Address)
_new_tuple = tuple.__new__
_SAME_AS_FROM = 0  # sender / reply_to equal to from (the RFC 3501 default) are written as 0


def _addrs_to(v: list[Address] | None) -> list[Any] | None:
    return None if v is None else [list(a) for a in v]


def _addrs_from(v: list[list[str | None]] | None) -> list[Address] | None:
    return None if v is None else list(map(_make_address, v))


def envelope_to_list(env: Envelope) -> list[Any]:
    from_ = _addrs_to(env.from_)
    sender = _addrs_to(env.sender)
    reply_to = _addrs_to(env.reply_to)
    return [
        env.date, env.subject, from_,
        _SAME_AS_FROM if sender == from_ and from_ is not None else sender,
        _SAME_AS_FROM if reply_to == from_ and from_ is not None else reply_to,
        _addrs_to(env.to), _addrs_to(env.cc), _addrs_to(env.bcc), env.in_reply_to, env.message_id,
    ]  # fmt: skip


def envelope_from_list(v: list[Any]) -> Envelope:
    from_ = None if v[2] is None else list(map(_make_address, v[2]))
    sender, reply_to, to, cc, bcc = v[3], v[4], v[5], v[6], v[7]
    return _new_tuple(
        Envelope,
        (
            v[0], v[1], from_,
            from_ if sender == 0 else None if sender is None else list(map(_make_address, sender)),
            from_ if reply_to == 0 else None if reply_to is None else list(map(_make_address, reply_to)),
            None if to is None else list(map(_make_address, to)),
            None if cc is None else list(map(_make_address, cc)),
            None if bcc is None else list(map(_make_address, bcc)),
            v[8], v[9],
        ),
    )  # fmt: skip


def envelope_to_json(env: Envelope) -> str:
    return json.dumps(envelope_to_list(env), ensure_ascii=True, separators=(",", ":"))


def envelope_from_json(text: str | bytes) -> Envelope:
    return envelope_from_list(json.loads(text))


def _params_from(v: list[list[str]]) -> Params:
    return list(map(tuple, v))  # type: ignore[arg-type]


def body_to_list(p: BodyPart) -> list[Any]:
    params = [list(x) for x in p.params]
    dparams = [list(x) for x in p.disposition_params]
    return [
        p.type, p.subtype, params,
        None if p.imap_params == p.params else [list(x) for x in p.imap_params],
        p.id, p.description, p.encoding, p.size, p.lines, p.md5, p.disposition, dparams,
        None if p.disposition_imap_params == p.disposition_params
        else [list(x) for x in p.disposition_imap_params],
        p.language, p.location, p.header_start, p.body_start, p.end,
        [body_to_list(c) for c in p.children],
        None if p.envelope is None else envelope_to_list(p.envelope),
        None if p.message is None else body_to_list(p.message),
    ]  # fmt: skip


def body_from_list(v: list[Any]) -> BodyPart:
    params = _params_from(v[2])
    dparams = _params_from(v[11])
    return BodyPart(
        v[0], v[1], params, params if v[3] is None else _params_from(v[3]),
        v[4], v[5], v[6], v[7], v[8], v[9], v[10], dparams,
        dparams if v[12] is None else _params_from(v[12]),
        v[13], v[14], v[15], v[16], v[17],
        [body_from_list(c) for c in v[18]] if v[18] else [],
        None if v[19] is None else envelope_from_list(v[19]),
        None if v[20] is None else body_from_list(v[20]),
    )  # fmt: skip


def body_to_json(part: BodyPart) -> str:
    return json.dumps(body_to_list(part), ensure_ascii=True, separators=(",", ":"))


def body_from_json(text: str | bytes) -> BodyPart:
    return body_from_list(json.loads(text))
