"""Benchmark of the delivery-time parse and the FETCH-time decoding of stored JSON.

Run: ``python -m bench.mime_parse``. Prints microseconds per message parse (a typical
~10 KB message: text, HTML alternative, one attachment) and milliseconds to decode the
stored envelope and body structure of 10,000 messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from courriel.mime.compose import Attachment, compose_message
from courriel.mime.parse import parse_message
from courriel.mime.structure import (
    body_from_json,
    body_to_json,
    envelope_from_json,
    envelope_to_json,
)


def typical_message() -> bytes:
    """About 10 KB: 5 addresses, a text part, an HTML alternative, a PDF attachment."""
    return compose_message(
        from_=("Jérôme Dupont", "jerome@example.com"),
        to=["alice@example.org", ("Ivan Иванов", "ivan@example.ru"), "bob@example.net"],
        cc="carol@example.com",
        subject="Re: Compte rendu de la réunion du lundi",
        text="Bonjour à tous,\nvoici le compte rendu.\n" * 60,
        html="<p>Bonjour à tous,<br>voici le <b>compte rendu</b>.</p>\n" * 60,
        attachments=[Attachment("compte-rendu.pdf", bytes(range(256)) * 8)],
        in_reply_to="parent@example.com",
        references=["root@example.com", "parent@example.com"],
        date=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        domain="example.com",
    )


def _per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    data = typical_message()
    msg = parse_message(data)
    env_json = envelope_to_json(msg.envelope)
    body_json = body_to_json(msg.body)
    parse_s = _per_call(lambda: parse_message(data), 500)
    env_s = _per_call(lambda: envelope_from_json(env_json), 10_000)
    body_s = _per_call(lambda: body_from_json(body_json), 10_000)
    parts = sum(1 for _ in msg.body.walk()) - 1
    print(f"message: {len(data)} octets, {parts} parts")
    print(f"parse_message: {parse_s * 1e6:.0f} us per message")
    print(f"envelope JSON {len(env_json)} B: {env_s * 1e4 * 1e3:.1f} ms per 10,000 decodes")
    print(f"body JSON {len(body_json)} B: {body_s * 1e4 * 1e3:.1f} ms per 10,000 decodes")


if __name__ == "__main__":
    main()
