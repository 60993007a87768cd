"""The jmapc package (a JMAP client nobody here wrote) against the server: Mailbox/get,
Email/query, Email/get, Email/set (draft, keywords, move, destroy), EmailSubmission/set to a
local user (then read over IMAP with imaplib) and to a remote one (then in the queue)."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest
from jmapc import (
    Client,
    Email,
    EmailAddress,
    EmailBodyPart,
    EmailBodyValue,
    EmailQueryFilterCondition,
    EmailSubmission,
    Envelope,
)
from jmapc.methods import (
    EmailGet,
    EmailGetResponse,
    EmailQuery,
    EmailQueryResponse,
    EmailSet,
    EmailSetResponse,
    EmailSubmissionSet,
    EmailSubmissionSetResponse,
    IdentityGet,
    IdentityGetResponse,
    MailboxGet,
    MailboxGetResponse,
)
from jmapc.models import Address

from tests.harness import CourrielServer


@pytest.fixture
def client(server: CourrielServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))  # requests trusts the test CA
    c = Client.create_with_password(f"127.0.0.1:{server.port('http')}", "alice@example.test", "alice-pw")
    yield c
    c.requests_session.close()


def roles(client: Client) -> dict[str, str]:
    resp = client.request(MailboxGet(ids=None))
    assert isinstance(resp, MailboxGetResponse)
    return {m.role or m.name or "": m.id or "" for m in resp.data}


def draft(client: Client, boxes: dict[str, str], subject: str, to: str) -> str:
    email = Email(
        mail_from=[EmailAddress(name="Alice", email="alice@example.test")],
        to=[EmailAddress(name=None, email=to)],
        subject=subject,
        keywords={"$draft": True},
        mailbox_ids={boxes["drafts"]: True},
        body_values={"body": EmailBodyValue(value=f"text of {subject}")},
        text_body=[EmailBodyPart(part_id="body", type="text/plain")],
    )
    resp = client.request(EmailSet(create={"d": email}))
    assert isinstance(resp, EmailSetResponse), resp
    assert resp.created and resp.created["d"] and resp.created["d"].id, resp
    return resp.created["d"].id


def test_mailboxes_and_drafts(client: Client) -> None:
    boxes = roles(client)
    assert {"inbox", "sent", "drafts", "trash", "junk", "archive"} <= set(boxes)
    eid = draft(client, boxes, "jmapc draft", "bob@example.test")

    q = client.request(EmailQuery(filter=EmailQueryFilterCondition(in_mailbox=boxes["drafts"])))
    assert isinstance(q, EmailQueryResponse) and isinstance(q.ids, list) and eid in q.ids
    got = client.request(EmailGet(ids=[eid], fetch_text_body_values=True))
    assert isinstance(got, EmailGetResponse)
    (mail,) = got.data
    assert mail.subject == "jmapc draft" and mail.keywords == {"$draft": True}
    assert mail.mail_from and mail.mail_from[0].email == "alice@example.test"
    assert mail.text_body and mail.body_values
    assert mail.body_values[mail.text_body[0].part_id or ""].value == "text of jmapc draft\n" or (
        mail.body_values[mail.text_body[0].part_id or ""].value == "text of jmapc draft"
    )

    # keywords, then a move to another mailbox, then destroy
    resp = client.request(EmailSet(update={eid: {"keywords/$flagged": True, "keywords/$draft": None}}))
    assert isinstance(resp, EmailSetResponse) and resp.updated is not None and eid in resp.updated
    resp = client.request(EmailSet(update={eid: {"mailboxIds": {boxes["archive"]: True}}}))
    assert isinstance(resp, EmailSetResponse) and resp.updated is not None
    got = client.request(EmailGet(ids=[eid], properties=["mailboxIds", "keywords"]))
    assert isinstance(got, EmailGetResponse)
    assert got.data[0].mailbox_ids == {boxes["archive"]: True}
    assert got.data[0].keywords == {"$flagged": True}
    resp = client.request(EmailSet(destroy=[eid]))
    assert isinstance(resp, EmailSetResponse) and resp.destroyed == [eid]
    got = client.request(EmailGet(ids=[eid]))
    assert isinstance(got, EmailGetResponse) and got.not_found == [eid]


def test_submission_local_and_remote(client: Client, server: CourrielServer) -> None:
    boxes = roles(client)
    ident = client.request(IdentityGet())
    assert isinstance(ident, IdentityGetResponse)
    identity = next(i for i in ident.data if i.email == "alice@example.test")

    eid = draft(client, boxes, "to bob via jmapc", "bob@example.test")
    resp = client.request(
        [
            EmailSubmissionSet(
                create={"s": EmailSubmission(email_id=eid, identity_id=identity.id)},
                on_success_update_email={"#s": {f"mailboxIds/{boxes['drafts']}": None, f"mailboxIds/{boxes['sent']}": True, "keywords/$draft": None}},
            )
        ]
    )
    sub = resp[0].response
    assert isinstance(sub, EmailSubmissionSetResponse), sub
    assert sub.created and "s" in sub.created, sub
    implicit = resp[1].response  # §7.5: the Email/set done on success
    assert isinstance(implicit, EmailSetResponse) and implicit.updated is not None and eid in implicit.updated
    got = client.request(EmailGet(ids=[eid], properties=["mailboxIds", "keywords"]))
    assert isinstance(got, EmailGetResponse)
    assert got.data[0].mailbox_ids == {boxes["sent"]: True} and not got.data[0].keywords

    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        imap.login("bob@example.test", "bob-pw")
        imap.select("INBOX")
        typ, data = imap.search(None, "SUBJECT", '"to bob via jmapc"')
        assert typ == "OK" and data[0], data
        typ, fetched = imap.fetch(data[0].split()[-1], "(BODY.PEEK[])")
        item = fetched[0]
        assert isinstance(item, tuple)
        raw = item[1]
        assert b"text of to bob via jmapc" in raw and b"Received: from jmap" in raw
        assert b"\r\nBcc:" not in raw
    finally:
        imap.logout()

    # a remote recipient with an explicit envelope: queued for the outbound client
    eid = draft(client, boxes, "to the world", "someone@remote.example")
    env = Envelope(mail_from=Address(email="alice@example.test"), rcpt_to=[Address(email="someone@remote.example")])
    sub2 = client.request(EmailSubmissionSet(create={"r": EmailSubmission(email_id=eid, identity_id=identity.id, envelope=env)}))
    assert isinstance(sub2, EmailSubmissionSetResponse) and sub2.created and "r" in sub2.created, sub2
    queue = server.cli("queue", "list").stdout
    assert "<someone@remote.example>" in queue and "from <alice@example.test>" in queue

    # someone else's address as sender: SMTP's 553 5.7.1 rule
    env = Envelope(mail_from=Address(email="bob@example.test"), rcpt_to=[Address(email="bob@example.test")])
    sub3 = client.request(EmailSubmissionSet(create={"x": EmailSubmission(email_id=eid, identity_id=identity.id, envelope=env)}))
    assert isinstance(sub3, EmailSubmissionSetResponse) and sub3.not_created
    assert sub3.not_created["x"].type == "forbiddenMailFrom"
