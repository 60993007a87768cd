"""The JMAP vacation across two ``courriel serve`` nodes on one PostgreSQL store: node A takes
JMAP (httpx) and ManageSieve (sievelib), node B takes the mail (smtplib). B reads the
scripts at every delivery, so what A changes applies to B's very next message: a vacation
turned on (B had just delivered without one), the user's script edited, the vacation off."""

from __future__ import annotations

import asyncio
import smtplib
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sievelib.managesieve import Client as SieveClient

from courriel.config import load_config
from courriel.store import open_store
from tests.harness import CourrielServer
from tests.jmap.conftest import Api
from tests.nodes.cluster import make_nodes

CAROL = ("carol@example.test", "carol-pw")
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:vacationresponse"]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CourrielServer]]:
    from tests.pg import cluster

    pg = cluster()
    dsn = pg.fresh_dsn("vacation")
    env = {"COURRIEL_HTTP_TLS": "true", "COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true"}
    try:
        started = make_nodes(Path(tmp_path_factory.mktemp("vacnodes")), dsn, 2, env, users=dict([CAROL]),
                             services=("smtp", "imap", "http", "managesieve"))  # fmt: skip
        try:
            yield started
        finally:
            for node in started:
                node.stop()
    finally:
        pg.drop(dsn)


def send(node: CourrielServer, sender: str, subject: str) -> None:
    data = f"From: {sender}\r\nTo: {CAROL[0]}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@r>\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", node.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, [CAROL[0]], data.encode())


async def _state(node: CourrielServer) -> tuple[list[str], dict[str, int]]:
    store = await open_store(load_config(node.data, env=node.env))
    try:
        user = await store.get_user(CAROL[0])
        assert user is not None
        counts = {}
        for box in await store.list_mailboxes(user.id):
            counts[box.name] = len(await store.list_messages(box.id))
        return [q.recipients[0].address for q in await store.list_queue()], counts
    finally:
        await store.close()


def state(node: CourrielServer) -> tuple[list[str], dict[str, int]]:
    """(the recipients of the queued replies, messages per mailbox), from the shared store."""
    return asyncio.run(_state(node))


def vacation(api: Api, patch: dict[str, object]) -> None:
    r = api.raw([["VacationResponse/set", {"accountId": api.account, "update": {"singleton": patch}}, "0"]], USING)
    assert r.json()["methodResponses"][0][1]["updated"] == {"singleton": None}, r.text


def test_changes_on_one_node_apply_at_once_on_the_other(nodes: list[CourrielServer]) -> None:
    a, b = nodes
    send(b, "first@remote.example", "before")  # B compiles and delivers: no script, no vacation
    replies, counts = state(b)
    assert replies == [] and counts["INBOX"] == 1
    api = Api(a, auth=CAROL)
    try:
        vacation(api, {"isEnabled": True, "subject": "Away", "textBody": "Away (JMAP)."})
        send(b, "second@remote.example", "during")
        assert state(b)[0] == ["second@remote.example"]

        sieve = SieveClient("127.0.0.1", a.port("managesieve"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # plaintext on loopback
            assert sieve.connect(CAROL[0], CAROL[1], authmech="PLAIN")
        try:
            assert sieve.putscript("main", 'require ["fileinto", "mailbox"];\nfileinto :create "Filed";\n')
            assert sieve.setactive("main")
        finally:
            sieve.logout()
        send(b, "third@remote.example", "filed")
        replies, counts = state(b)
        assert replies == ["second@remote.example", "third@remote.example"] and counts["Filed"] == 1

        vacation(api, {"isEnabled": False})
        send(b, "fourth@remote.example", "after")
        replies, counts = state(b)
        assert "fourth@remote.example" not in replies and counts["Filed"] == 2
    finally:
        api.close()
