"""Identity/get and EmailSubmission/set (RFC 8621 §6, §7).

Identities are the user's address and the aliases that point straight at it (the addresses
:meth:`Resolver.owns` accepts). A submission hands the Email's bytes, without Bcc (§7.5), to
:func:`courriel.delivery.submit.submit`, the path authenticated SMTP submission takes: the
same sender checks (SMTP's ``553 5.7.1`` becomes ``forbiddenMailFrom``/``forbiddenFrom``),
local delivery through aliases and Sieve, the outbound queue for remote recipients.
Submissions are final at once (no delayed send, undoStatus "final"); each is remembered in
the store for EmailSubmission/get and the rest (:mod:`.submitted`). Destroying one forgets
the record (the mail is sent); updating undoStatus to "canceled" is ``cannotUnsend``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from courriel.delivery.submit import SubmitError, submit
from courriel.jmap import submitted
from courriel.jmap.args import set_counts, set_error
from courriel.jmap.core import SUBMISSION, Call, MethodError, invalid, method
from courriel.jmap.emailset import email_set
from courriel.jmap.headers import as_addresses, utc_date
from courriel.jmap.index import Account, content_of
from courriel.mime.headers import scan_header
from courriel.store.api import EmailSubmissionRecord, StoreError

log = logging.getLogger("courriel.jmap")
_BCC = re.compile(rb"^Bcc:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n", re.IGNORECASE | re.MULTILINE)


def identity_id(address: str) -> str:
    return "I" + hashlib.sha256(address.lower().encode()).hexdigest()[:16]


async def identities(acct: Account) -> list[dict[str, Any]]:
    addresses = [acct.address]
    me = acct.address.lower()
    for alias in await acct.store.list_aliases():
        if not alias.address.startswith("@") and any(t.lower() == me for t in alias.targets):
            addresses.append(alias.address)
    return [
        {
            "id": identity_id(a), "name": "", "email": a, "replyTo": None, "bcc": None,
            "textSignature": "", "htmlSignature": "", "mayDelete": False,
        }
        for a in addresses
    ]


@method("Identity/get", SUBMISSION)
async def identity_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    items = await identities(acct)
    ids = args.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid("ids must be an array of ids")
    by_id = {i["id"]: i for i in items}
    wanted = ids if ids is not None else list(by_id)
    return {
        "accountId": acct.id, "state": "0", "list": [by_id[i] for i in wanted if i in by_id],
        "notFound": [i for i in wanted if i not in by_id],
    }  # fmt: skip


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data.replace(b"\r\r\n", b"\r\n"))


def _without_bcc(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data
    return _BCC.sub(b"", data[: end + 2]) + data[end + 2 :]


def _envelope(obj: dict[str, Any], data: bytes, identity_email: str) -> tuple[str, list[str]]:
    env = obj.get("envelope")
    if env is not None:
        if not isinstance(env, dict):
            raise ValueError("envelope must be an object")
        mail_from, rcpt_to = env.get("mailFrom"), env.get("rcptTo")
        if not isinstance(mail_from, dict) or not isinstance(mail_from.get("email"), str):
            raise ValueError("envelope.mailFrom needs an email")
        if not isinstance(rcpt_to, list) or not all(isinstance(r, dict) and isinstance(r.get("email"), str) for r in rcpt_to):
            raise ValueError("envelope.rcptTo must be an array of addresses")
        return mail_from["email"], [r["email"] for r in rcpt_to]
    # §7: without an envelope, MAIL FROM is the identity, RCPT TO the To, Cc and Bcc addresses.
    end = data.find(b"\r\n\r\n")
    fields, _ = scan_header(data, 0, end + 2 if end >= 0 else len(data))
    rcpts: dict[str, str] = {}
    for name, raw in fields:
        if name.lower() in ("to", "cc", "bcc"):
            for a in as_addresses(raw):
                if "@" in a["email"]:
                    rcpts.setdefault(a["email"].lower(), a["email"])
    return identity_email, list(rcpts.values())


def _submit_error(exc: SubmitError) -> dict[str, Any]:
    if exc.code == 553:
        kind = "forbiddenFrom" if exc.text.startswith("From address") else "forbiddenMailFrom"
        return set_error(kind, exc.text)
    if exc.status == "5.1.1" and exc.recipient:
        return set_error("invalidRecipients", exc.text, invalidRecipients=[exc.recipient])
    if exc.status == "5.5.1":
        return set_error("noRecipients", exc.text)
    if exc.status.startswith("4.2") or exc.status.startswith("5.2"):
        return set_error("tooLarge" if exc.status == "5.2.2" else "forbiddenToSend", exc.text)
    return set_error("invalidEmail" if exc.status.startswith("5.6") else "forbiddenToSend", exc.text)


@method("EmailSubmission/set", SUBMISSION)
async def submission_set(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    create, update, destroy = set_counts(args, acct.ctx.cfg.jmap.max_objects_in_set)
    _, state = await submitted.records(acct)
    old_state = str(state)
    if args.get("ifInState") not in (None, old_state):
        raise MethodError("stateMismatch", f"state is {old_state}")
    idents = {i["id"]: i for i in await identities(acct)}
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    email_of: dict[str, str] = {}
    for cid, obj in create.items():
        ident = idents.get(obj.get("identityId")) if isinstance(obj.get("identityId"), str) else None
        if ident is None:
            not_created[cid] = set_error("invalidProperties", "unknown identityId", properties=["identityId"])
            continue
        eid = call.resolve_id(obj["emailId"]) if isinstance(obj.get("emailId"), str) else ""
        entry = (await acct.index()).emails.get(content_of(eid) or -1)
        if entry is None:
            not_created[cid] = set_error("invalidProperties", "emailId not found", properties=["emailId"])
            continue
        box, uid = entry.copies[0]
        recs = await acct.store.get_records(box, [uid])
        try:
            data = _crlf(await acct.store.read_message(recs[0].blob)) if recs else b""
        except FileNotFoundError:
            data = b""
        if not data:
            not_created[cid] = set_error("invalidProperties", "emailId not found", properties=["emailId"])
            continue
        try:
            mail_from, rcpts = _envelope(obj, data, ident["email"])
        except ValueError as exc:
            not_created[cid] = set_error("invalidProperties", str(exc), properties=["envelope"])
            continue
        try:
            done = await submit(
                acct.store, acct.address, mail_from, rcpts, _without_bcc(data),
                hostname=acct.ctx.cfg.server.hostname, protocol="HTTPSA" if acct.tls else "HTTPA",
                peer_ip=acct.peer_ip or "127.0.0.1", client_name="jmap",
            )  # fmt: skip
        except SubmitError as exc:
            not_created[cid] = _submit_error(exc)
            continue
        now = time.time()
        record = EmailSubmissionRecord(
            "S" + done.id, acct.user_id, ident["id"], eid, entry.thread,
            {"mailFrom": {"email": mail_from, "parameters": None},
             "rcptTo": [{"email": r, "parameters": None} for r in rcpts]},
            now, done.queue_id, submitted.initial_status(rcpts, done.delivered),
        )  # fmt: skip
        try:
            await acct.store.add_email_submission(record)
        except StoreError as exc:  # the mail is sent: say so, even if it cannot be listed later
            log.error("jmap: submission %s of %s not recorded: %s", record.id, acct.address, exc)
        created[cid] = {"id": record.id, "undoStatus": "final", "sendAt": utc_date(datetime.fromtimestamp(now, UTC))}
        call.created_ids[cid] = record.id
        email_of[cid] = eid
        email_of[record.id] = eid
    live = {r.id for r in (await submitted.records(acct))[0]}
    update = {_created(call, sid): patch for sid, patch in update.items()}
    destroy = [_created(call, sid) for sid in destroy]
    not_updated = {}
    for sid, patch in update.items():
        if sid not in live:
            not_updated[sid] = set_error("notFound")
        elif set(patch) - {"undoStatus"}:
            not_updated[sid] = set_error("invalidProperties", "only undoStatus may change", properties=sorted(patch))
        elif patch.get("undoStatus") == "final":
            continue  # unchanged
        else:  # §7.5: a final submission cannot be unsent
            not_updated[sid] = set_error("cannotUnsend", "the message has been sent: undoStatus is final")
    updated = {sid: None for sid in update if sid not in not_updated}
    gone = await acct.store.destroy_email_submissions(acct.user_id, [s for s in destroy if s in live])
    not_destroyed = {sid: set_error("notFound") for sid in destroy if sid not in gone}
    state = max((r.changed for r in await acct.store.email_submissions(acct.user_id, True)), default=0)
    out: dict[str, Any] = {
        "accountId": acct.id, "oldState": old_state, "newState": str(state), "created": created or None,
        "notCreated": not_created or None, "updated": updated or None, "notUpdated": not_updated or None,
        "destroyed": gone or None, "notDestroyed": not_destroyed or None,
    }  # fmt: skip
    await _on_success(call, args, email_of)
    return out


def _created(call: Call, ref: str) -> str:
    """An id, or the id a ``#creationId`` of this request stands for (unknown: left as is)."""
    return call.created_ids.get(ref[1:], ref) if ref.startswith("#") else ref


async def _on_success(call: Call, args: dict[str, Any], email_of: dict[str, str]) -> None:
    """§7.5: onSuccessUpdateEmail / onSuccessDestroyEmail, as an implicit Email/set call."""
    upd, dst = args.get("onSuccessUpdateEmail"), args.get("onSuccessDestroyEmail")
    if upd is None and dst is None:
        return
    if (upd is not None and not isinstance(upd, dict)) or (dst is not None and not isinstance(dst, list)):
        raise invalid("onSuccessUpdateEmail must be an object, onSuccessDestroyEmail an array")

    def target(ref: str) -> str | None:
        return email_of.get(ref[1:]) if ref.startswith("#") else email_of.get(ref)

    update = {e: patch for ref, patch in (upd or {}).items() if (e := target(ref))}
    destroy = [e for ref in (dst or []) if isinstance(ref, str) and (e := target(ref))]
    if update or destroy:
        extra = await email_set(call, {"accountId": call.account.id, "update": update, "destroy": destroy})
        call.extra.append(("Email/set", extra))

