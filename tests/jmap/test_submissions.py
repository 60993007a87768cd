"""EmailSubmission/get, /changes, /query, /queryChanges (RFC 8621 §7.1-7.4) with jmapc after
a submission to a local and a remote recipient made over jmapc; /set update (cannotUnsend)
and destroy, Email/copy (RFC 8620 §5.4) with the exact requests of the RFC (httpx); the
deliveryStatus rules as a table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from jmapc import (
    Client,
    Comparator,
    Email,
    EmailAddress,
    EmailBodyPart,
    EmailBodyValue,
    EmailSubmission,
    EmailSubmissionQueryFilterCondition,
    UndoStatus,
    errors,
)
from jmapc.methods import (
    EmailCopy,
    EmailSet,
    EmailSetResponse,
    EmailSubmissionChanges,
    EmailSubmissionChangesResponse,
    EmailSubmissionGet,
    EmailSubmissionGetResponse,
    EmailSubmissionQuery,
    EmailSubmissionQueryChanges,
    EmailSubmissionQueryChangesResponse,
    EmailSubmissionQueryResponse,
    EmailSubmissionSet,
    EmailSubmissionSetResponse,
    IdentityGet,
    IdentityGetResponse,
    MailboxGet,
    MailboxGetResponse,
)

from courriel.jmap.submitted import FAILED_REPLY, current_status, initial_status
from courriel.store.api import MessageEvent, QueuedMessage, QueuedRecipient
from tests.harness import CourrielServer
from tests.jmap.conftest import Api

REMOTE = "carol-sub@remote.example"


@pytest.fixture
def client(server: CourrielServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))
    c = Client.create_with_password(f"127.0.0.1:{server.port('http')}", "alice@example.test", "alice-pw")
    yield c
    c.requests_session.close()


def _v(value: object) -> object:
    """An enum's value (jmapc models statuses as enums)."""
    return getattr(value, "value", value)


def _state(client: Client) -> str:
    got = client.request(EmailSubmissionGet(ids=[]))
    assert isinstance(got, EmailSubmissionGetResponse) and got.state is not None
    return got.state


def _send(client: Client, subject: str) -> tuple[str, str]:
    """A draft to bob (local) and REMOTE, submitted: (email id, submission id)."""
    boxes = client.request(MailboxGet(ids=None))
    assert isinstance(boxes, MailboxGetResponse)
    drafts = next(m.id for m in boxes.data if m.role == "drafts")
    assert drafts is not None
    email = Email(
        mail_from=[EmailAddress(email="alice@example.test")],
        to=[EmailAddress(email="bob@example.test"), EmailAddress(email=REMOTE)],
        subject=subject, keywords={"$draft": True}, mailbox_ids={drafts: True},
        body_values={"b": EmailBodyValue(value="hello")}, text_body=[EmailBodyPart(part_id="b", type="text/plain")],
    )  # fmt: skip
    made = client.request(EmailSet(create={"d": email}))
    assert isinstance(made, EmailSetResponse) and made.created and made.created["d"]
    eid = made.created["d"].id
    assert eid is not None
    idents = client.request(IdentityGet())
    assert isinstance(idents, IdentityGetResponse)
    ident = next(i.id for i in idents.data if i.email == "alice@example.test")
    sent = client.request(EmailSubmissionSet(create={"s": EmailSubmission(email_id=eid, identity_id=ident)}))
    assert isinstance(sent, EmailSubmissionSetResponse) and sent.created, sent
    made_sub = sent.created["s"]
    assert made_sub is not None and made_sub.id is not None
    sid = made_sub.id
    return eid, sid


def test_get_changes_query(client: Client, api: Api, server: CourrielServer) -> None:
    before = _state(client)
    eid, sid = _send(client, "remembered submission")

    got = client.request(EmailSubmissionGet(ids=[sid, "Snope"]))
    assert isinstance(got, EmailSubmissionGetResponse) and got.not_found == ["Snope"]
    (sub,) = got.data
    assert sub.email_id == eid and _v(sub.undo_status) == "final" and sub.thread_id and sub.identity_id
    assert sub.envelope and sub.envelope.mail_from and sub.envelope.mail_from.email == "alice@example.test"
    assert sub.envelope.rcpt_to and {a.email for a in sub.envelope.rcpt_to} == {"bob@example.test", REMOTE}
    assert sub.delivery_status is not None
    assert _v(sub.delivery_status["bob@example.test"].delivered) == "yes"
    assert _v(sub.delivery_status[REMOTE].delivered) == "queued"
    assert sub.delivery_status[REMOTE].smtp_reply.startswith("250 ")
    assert sub.send_at is not None and abs(sub.send_at.timestamp() - datetime.now(UTC).timestamp()) < 600
    assert sub.dsn_blob_ids == [] and sub.mdn_blob_ids == []
    after = got.state
    assert after != before

    ch = client.request(EmailSubmissionChanges(since_state=before))
    assert isinstance(ch, EmailSubmissionChangesResponse)
    assert ch.created == [sid] and ch.updated == [] and ch.destroyed == [] and ch.new_state == after

    flt = EmailSubmissionQueryFilterCondition(email_ids=[eid], undo_status=UndoStatus.FINAL)
    q = client.request(EmailSubmissionQuery(filter=flt, sort=[Comparator(property="sentAt", is_ascending=False)]))
    assert isinstance(q, EmailSubmissionQueryResponse) and q.ids == [sid] and q.query_state == after
    everything = client.request(EmailSubmissionQuery(sort=[Comparator(property="sentAt", is_ascending=False)]))
    assert isinstance(everything, EmailSubmissionQueryResponse) and isinstance(everything.ids, list)
    assert everything.ids[0] == sid
    none = client.request(EmailSubmissionQuery(filter=EmailSubmissionQueryFilterCondition(undo_status=UndoStatus.PENDING)))
    assert isinstance(none, EmailSubmissionQueryResponse) and none.ids == []
    qc = client.request(EmailSubmissionQueryChanges(since_query_state=before, filter=flt))
    assert isinstance(qc, EmailSubmissionQueryChangesResponse)
    assert qc.added and [(a.id, a.index) for a in qc.added] == [(sid, 0)] and qc.new_query_state == after

    # The queue lets the remote recipient go (deleted here; no relayed event): the status
    # becomes "unknown" on the next read, and the state moves with it.
    listing = server.cli("queue", "list").stdout.splitlines()
    at = next(i for i, line in enumerate(listing) if f"<{REMOTE}>" in line)
    queue_id = next(line.split("\t")[0] for line in reversed(listing[:at]) if not line.startswith("\t"))
    server.cli("queue", "delete", queue_id)
    ch = client.request(EmailSubmissionChanges(since_state=after))
    assert isinstance(ch, EmailSubmissionChangesResponse) and ch.updated == [sid], ch
    got = client.request(EmailSubmissionGet(ids=[sid], properties=["deliveryStatus"]))
    assert isinstance(got, EmailSubmissionGetResponse) and got.data[0].delivery_status
    assert _v(got.data[0].delivery_status[REMOTE].delivered) == "unknown"
    assert _v(got.data[0].delivery_status["bob@example.test"].delivered) == "yes"


def test_set_update_and_destroy(client: Client, api: Api) -> None:
    _, sid = _send(client, "submission to forget")
    state = _state(client)
    # RFC 8621 §7.5: undoStatus "canceled" on a final submission is cannotUnsend.
    r = api.call("EmailSubmission/set", {"update": {sid: {"undoStatus": "canceled"}}, "ifInState": state})
    assert r["notUpdated"][sid]["type"] == "cannotUnsend" and r["newState"] == state
    r = api.call("EmailSubmission/set", {"update": {sid: {"emailId": "M1"}}})
    assert r["notUpdated"][sid]["type"] == "invalidProperties"
    err = api.error("EmailSubmission/set", {"destroy": [sid], "ifInState": "0"})
    assert err["type"] == "stateMismatch"
    r = api.call("EmailSubmission/set", {"destroy": [sid, "Sgone"]})
    assert r["destroyed"] == [sid] and r["notDestroyed"] == {"Sgone": {"type": "notFound"}}
    assert r["oldState"] == state and r["newState"] != state
    got = api.call("EmailSubmission/get", {"ids": [sid]})
    assert got["list"] == [] and got["notFound"] == [sid] and got["state"] == r["newState"]
    ch = api.call("EmailSubmission/changes", {"sinceState": state})
    assert ch["destroyed"] == [sid] and ch["created"] == [] and ch["updated"] == []
    qc = api.call("EmailSubmission/queryChanges", {"sinceQueryState": state})
    assert qc["removed"] == [sid] and qc["added"] == []
    assert api.error("EmailSubmission/changes", {"sinceState": "99999999"})["type"] == "cannotCalculateChanges"
    assert api.error("EmailSubmission/query", {"sort": [{"property": "size"}]})["type"] == "unsupportedSort"
    assert api.error("EmailSubmission/query", {"filter": {"subject": "x"}})["type"] == "unsupportedFilter"
    assert api.error("EmailSubmission/get", {"properties": ["header:Subject"]})["type"] == "invalidArguments"
    assert api.error("EmailSubmission/query", {"filter": {"before": "yesterday"}})["type"] == "invalidArguments"


def test_email_copy_needs_another_account(api: Api, client: Client) -> None:
    # RFC 8620 §5.4: fromAccountId "MUST be different to the accountId".
    got = client.request(EmailCopy(from_account_id=api.account, create={"c": Email(id="M1", mailbox_ids={})}))
    assert isinstance(got, errors.InvalidArguments), got
    err = api.error("Email/copy", {"fromAccountId": api.account, "create": {"c": {"id": "M1", "mailboxIds": {}}}})
    assert err["type"] == "invalidArguments"
    err = api.error("Email/copy", {"fromAccountId": "A999999", "create": {}})
    assert err["type"] == "fromAccountNotFound"
    assert api.error("Email/copy", {"create": {}})["type"] == "invalidArguments"


def _queued(*rows: tuple[str, str, str | None]) -> QueuedMessage:
    now = datetime.now(UTC)
    recipients = tuple(QueuedRecipient(i, a, None, None, st, 1, now, err) for i, (a, st, err) in enumerate(rows))
    return QueuedMessage(7, "a@example.test", 10, "b", now, None, None, False, False, "a@example.test", "X", recipients)


def _relayed(*rcpts: str) -> MessageEvent:
    details = {"queue_id": 7, "recipients": list(rcpts), "reply": "250 2.0.0 Ok: queued as 1"}
    return MessageEvent(1, 0, 1.0, "relayed", "SMTP", "mx", details)


START = initial_status(["Local@example.test", "r1@x.example", "r2@x.example"], ["local@example.test"])


@pytest.mark.parametrize(
    ("queued", "relayed", "expected"),
    [
        (_queued(("r1@x.example", "queued", None), ("r2@x.example", "queued", None)), [], ("queued", "queued")),
        (_queued(("r1@x.example", "deferred", "451 4.3.0 later"), ("r2@x.example", "failed", "550 5.1.1 no")), [],
         ("queued:451 4.3.0 later", "no:550 5.1.1 no")),
        (_queued(("r1@x.example", "delivered", None), ("R2@x.example", "queued", None)), [_relayed("r1@x.example")],
         ("yes:250 2.0.0 Ok: queued as 1", "queued")),
        (None, [_relayed("r1@x.example")], ("yes:250 2.0.0 Ok: queued as 1", f"no:{FAILED_REPLY}")),
        (None, [], ("unknown", "unknown")),
    ],
)  # fmt: skip
def test_delivery_status(queued: QueuedMessage | None, relayed: list[MessageEvent], expected: tuple[str, str]) -> None:
    got = current_status(START, queued, relayed)
    assert got["Local@example.test"]["delivered"] == "yes"
    for rcpt, want in zip(("r1@x.example", "r2@x.example"), expected, strict=True):
        delivered, _, reply = want.partition(":")
        assert got[rcpt]["delivered"] == delivered, (rcpt, got)
        if reply:
            assert got[rcpt]["smtpReply"] == reply
