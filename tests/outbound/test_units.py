"""Pure parts of the outbound path, table-driven: reply parsing, dot-stuffing, enhanced
status codes, retry schedule, routing over the test DNS, and the store's queue methods."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from courriel.config import OutboundSection
from courriel.queue import dsn
from courriel.queue.client import SmtpClient, SmtpClientError, dot_stuff
from courriel.queue.dns import Dns
from courriel.queue.routing import RouteError, route
from courriel.store.api import QueueRecipient, RecipientUpdate
from tests.conftest import StoreRunner
from tests.outbound.dnsserver import DnsServer


@pytest.mark.parametrize(
    ("data", "stuffed"),
    [
        (b"a\r\n", b"a\r\n"),
        (b".a\r\n", b"..a\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n"),
        (b"a\r\n..b", b"a\r\n...b\r\n"),
        (b"no final newline", b"no final newline\r\n"),
    ],
)
def test_dot_stuff(data: bytes, stuffed: bytes) -> None:
    assert dot_stuff(data) == stuffed


def read(raw: bytes) -> tuple[int, str] | str:
    async def go() -> tuple[int, str] | str:
        reader = asyncio.StreamReader(limit=8192)
        reader.feed_data(raw)
        reader.feed_eof()
        client = SmtpClient(reader, None, 5, "peer")  # type: ignore[arg-type]
        try:
            reply = await client.read_reply()
        except SmtpClientError as exc:
            return exc.text
        return reply.code, reply.text

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b"250 OK\r\n", (250, "OK")),
        (b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n", (250, "mx.test; PIPELINING; SIZE 100")),
        (b"550\r\n", (550, "")),
        (b"451 4.3.0 busy\n", (451, "4.3.0 busy")),
        (b"25O oops\r\n", "peer: malformed reply '25O oops'"),
        (b"250-partial\r\n", "peer closed the connection"),
        (b"hello\r\n", "peer: malformed reply 'hello'"),
    ],
)
def test_read_reply(raw: bytes, parsed: tuple[int, str] | str) -> None:
    assert read(raw) == parsed


@pytest.mark.parametrize(
    ("code", "text", "status"),
    [
        (550, "5.1.1 no such user", "5.1.1"),
        (550, "no enhanced code", "5.0.0"),
        (451, "4.7.1 greylisted", "4.7.1"),
        (451, "5.1.1 class mismatch", "4.0.0"),
        (250, "2.0.0 OK", "2.0.0"),
        (554, "5.7.1234 too long", "5.0.0"),
    ],
)
def test_status_of(code: int, text: str, status: str) -> None:
    assert dsn.status_of(code, text) == status


def test_routing(dns: DnsServer) -> None:
    dns.add("pref.test", "MX", "20 backup.pref.test.")
    dns.add("pref.test", "MX", "10 primary.pref.test.")
    dns.add("primary.pref.test", "A", "127.0.0.2")
    dns.add("backup.pref.test", "AAAA", "::1")
    dns.add("null.test", "MX", "0 .")
    dns.add("bare.test", "A", "127.0.0.3")
    dns.add("nomx-noaddr.test", "TXT", '"x"')
    dns.add("dangling.test", "MX", "10 nowhere.test.")
    cfg = OutboundSection(port=2525)
    resolver = Dns(dns.address)

    async def go(domain: str) -> object:
        try:
            r = await route(domain, cfg, resolver)
        except RouteError as exc:
            return (exc.permanent, exc.status)
        return [(h.host, h.port, h.addresses) for h in r.hops]

    async def main() -> None:
        assert await go("pref.test") == [
            ("primary.pref.test", 2525, ("127.0.0.2",)),
            ("backup.pref.test", 2525, ("::1",)),
        ]
        assert await go("null.test") == (True, "5.1.10")  # RFC 7505
        assert await go("bare.test") == [("bare.test", 2525, ("127.0.0.3",))]  # implicit MX
        assert await go("nomx-noaddr.test") == (True, "5.1.2")
        assert await go("missing.test") == (True, "5.1.2")  # NXDOMAIN
        assert await go("dangling.test") == (True, "5.1.2")
        assert await go("[127.0.0.9]") == [("127.0.0.9", 2525, ("127.0.0.9",))]

    asyncio.run(main())
    relay = OutboundSection(port=25, smarthost="127.0.0.1:2526", routes=["special.test=127.0.0.1:2527"])

    async def relays() -> None:
        r = await route("special.test", relay, resolver)
        assert r.relay and r.hops[0].port == 2527
        r = await route("pref.test", relay, resolver)
        assert r.relay and r.hops[0].port == 2526

    asyncio.run(relays())


def test_dns_trouble_is_temporary() -> None:
    resolver = Dns("127.0.0.1:9", timeout=0.5)  # nothing answers there

    async def go() -> RouteError:
        with pytest.raises(RouteError) as info:
            await route("any.test", OutboundSection(), resolver)
        return info.value

    err = asyncio.run(go())
    assert not err.permanent and err.status == "4.4.3"


def test_store_queue_methods(runner: StoreRunner) -> None:
    store = runner
    s = store.store
    qid = store.run(s.enqueue(b"Subject: q\r\n\r\nx\r\n", "a@example.test",
                              [QueueRecipient("x@r.test"), QueueRecipient("y@r.test", "NEVER")]))  # fmt: skip
    now = datetime.now(UTC)
    (msg,) = store.run(s.due_queue(now + timedelta(seconds=1)))
    assert msg.id == qid and [r.state for r in msg.recipients] == ["queued", "queued"]
    x, y = msg.recipients
    later = now + timedelta(hours=1)
    assert store.run(s.update_queue([RecipientUpdate(x.id, "deferred", later, "451 busy")])) == []
    (msg,) = store.run(s.due_queue(now + timedelta(seconds=1)))  # y is still due
    assert msg.recipients[0].attempts == 1 and msg.recipients[0].last_error == "451 busy"
    assert store.run(s.update_queue([RecipientUpdate(y.id, "delivered")])) == []
    assert store.run(s.due_queue(now + timedelta(seconds=1))) == []  # x waits an hour
    assert store.run(s.flush_queue()) == 1
    (msg,) = store.run(s.due_queue(now + timedelta(seconds=1)))
    assert store.run(s.update_queue([RecipientUpdate(msg.recipients[0].id, "failed", None, "550 no")])) == [qid]
    assert store.run(s.list_queue()) == []
    assert store.run(s.check()) == []  # the message file went with it
