"""courriel.mime: parse a message once at delivery, compose messages to send.

Pure functions on bytes; no I/O, no store. Depends only on the stdlib.

Modules:
- ``structure``: ``Address``, ``Envelope``, ``BodyPart`` (IMAP ENVELOPE/BODYSTRUCTURE with
  byte offsets into the raw message) and their compact JSON codec, stored at delivery.
- ``parse``: ``parse_message`` (never raises; defects recorded), ``ParsedMessage``.
- ``content``: ``decode_part``, ``part_text``, ``html_to_text``, JMAP ``body_lists``.
- ``headers``/``address``/``params``/``subject``: header-level readers (RFC 2047, RFC 5322
  addresses and dates, RFC 2045/2231 parameters, RFC 5256 base subject).
- ``compose``/``encode``: ``compose_message`` and the header writers it uses.

Invariants (details in each module):
- Offsets index the exact bytes given to ``parse_message``; ``data[p.body_start:p.end]``
  is part ``p``'s body and has ``p.size`` octets.
- Raw header strings are UTF-8 decoded with ``surrogateescape`` (8-bit bytes survive).
- Part numbers follow RFC 9051 §6.4.5 (``BodyPart.part_at``, ``BodyPart.walk``).
"""

from .address import parse_address_list, parse_addresses
from .compose import Attachment, choose_charset, compose_message
from .content import body_lists, decode_part, html_to_text, part_text
from .headers import decode_header_value, parse_date, parse_msg_ids, unfold
from .parse import DEFAULT_MAX_DEPTH, ParsedMessage, make_envelope, parse_message
from .structure import (
    Address,
    BodyPart,
    Envelope,
    body_from_json,
    body_to_json,
    envelope_from_json,
    envelope_to_json,
)
from .subject import base_subject

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "Address",
    "Attachment",
    "BodyPart",
    "Envelope",
    "ParsedMessage",
    "base_subject",
    "body_from_json",
    "body_lists",
    "body_to_json",
    "choose_charset",
    "compose_message",
    "decode_header_value",
    "decode_part",
    "envelope_from_json",
    "envelope_to_json",
    "html_to_text",
    "make_envelope",
    "parse_address_list",
    "parse_addresses",
    "parse_date",
    "parse_message",
    "parse_msg_ids",
    "part_text",
    "unfold",
]
