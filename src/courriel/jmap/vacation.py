"""VacationResponse/get and /set (RFC 8621 §8), kept as a system Sieve script.

The VacationResponse is the Sieve script named ``jmap-vacation``
(:data:`courriel.sieve.delivery.VACATION_SCRIPT`), stored beside the user's own scripts but
never the active one: a comment line keeps the object as JSON (what /get reads back); when
enabled, the RFC 5230 ``vacation`` action follows, inside RFC 5260 ``currentdate`` tests for
fromDate/toDate, with ``:days`` from ``[jmap] vacation_days``. Disabled, the script keeps the
object and no action. Local delivery runs it before the user's active script, with only its
vacation action honoured (:mod:`courriel.sieve.delivery`); the user's scripts are never read
or changed here, and ManageSieve may read this script but not write, rename, delete or
activate it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from courriel.jmap.args import set_counts, set_error
from courriel.jmap.core import VACATION, Call, MethodError, invalid, method
from courriel.jmap.index import Account
from courriel.jmap.submission import identities
from courriel.sieve.delivery import VACATION_SCRIPT
from courriel.sieve.grammar import SieveSyntaxError
from courriel.sieve.validate import compile_script
from courriel.store.api import StoreError

SCRIPT = VACATION_SCRIPT
MARK = "# jmap-vacation: "
SINGLETON = "singleton"
PROPERTIES = ("id", "isEnabled", "fromDate", "toDate", "subject", "textBody", "htmlBody")
_DEFAULT: dict[str, Any] = {
    "isEnabled": False, "fromDate": None, "toDate": None, "subject": None, "textBody": None, "htmlBody": None,
}  # fmt: skip
_BOUNDARY = "=_courriel_vacation"


def sieve_string(value: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _iso(value: str) -> str:
    """A UTCDate as the ``iso8601`` date part shows it in zone +0000 (RFC 5260 §4.2)."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"


def _reason(obj: dict[str, Any]) -> tuple[str, bool]:
    """The vacation reason and whether it is a MIME entity (``:mime``, for htmlBody)."""
    text, html = obj.get("textBody"), obj.get("htmlBody")
    if not html:
        return (text if text is not None else "I am away and will read your message when I am back."), False
    html_part = f"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{html}\n"
    if text is None:  # §8: a text part "SHOULD be generated" or MAY be HTML only: HTML only
        return html_part, True
    return (
        f'Content-Type: multipart/alternative; boundary="{_BOUNDARY}"\n\n'
        f"--{_BOUNDARY}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{text}\n"
        f"--{_BOUNDARY}\n{html_part}--{_BOUNDARY}--\n"
    ), True


def generate(obj: dict[str, Any], days: int, addresses: list[str]) -> str:
    """The script for VacationResponse ``obj``: its state, and the vacation when enabled."""
    state = {k: obj.get(k) for k in _DEFAULT}
    lines = [
        "# The JMAP VacationResponse of this account (RFC 8621 §8), written by courriel: change it",
        "# over JMAP (VacationResponse/set). Delivery runs only its vacation action, before the",
        "# active script, which files the message as usual.",
        MARK + json.dumps(state, separators=(",", ":")),
        'require ["vacation", "date", "relational"];',
    ]
    if obj.get("isEnabled"):
        reason, mime = _reason(obj)
        action = f"vacation :days {days}"
        if obj.get("subject") is not None:
            action += " :subject " + sieve_string(obj["subject"])
        if addresses:
            action += " :addresses [" + ", ".join(sieve_string(a) for a in addresses) + "]"
        action += (" :mime" if mime else "") + " " + sieve_string(reason) + ";"
        tests = []
        if obj.get("fromDate"):  # §8: replies only from fromDate on, and before toDate
            tests.append(f'currentdate :zone "+0000" :value "ge" "iso8601" {sieve_string(_iso(obj["fromDate"]))}')
        if obj.get("toDate"):
            tests.append(f'currentdate :zone "+0000" :value "lt" "iso8601" {sieve_string(_iso(obj["toDate"]))}')
        if tests:
            lines += [f"if allof ({', '.join(tests)}) {{", f"    {action}", "}"]
        else:
            lines.append(action)
    return "\n".join(lines) + "\n"


def stored_state(content: str) -> dict[str, Any]:
    for line in content.split("\n", 8)[:8]:
        if line.startswith(MARK):
            try:
                found = json.loads(line[len(MARK) :])
            except ValueError:
                break
            if isinstance(found, dict):
                return found
    return {}


async def current(acct: Account) -> dict[str, Any]:
    """The VacationResponse without its id."""
    script = await acct.store.get_sieve_script(acct.user_id, SCRIPT)
    if script is None:
        return dict(_DEFAULT)
    state = stored_state(script.content)
    obj = {k: state.get(k, v) for k, v in _DEFAULT.items()}
    obj["isEnabled"] = bool(obj["isEnabled"])
    return obj


def _state_of(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@method("VacationResponse/get", VACATION)
async def vacation_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid("ids must be an array of ids")
    props = args.get("properties")
    if props is not None and (not isinstance(props, list) or any(p not in PROPERTIES for p in props)):
        raise invalid("unknown property")
    obj = await current(call.account)
    full = {"id": SINGLETON, **obj}
    item = {k: v for k, v in full.items() if props is None or k in props or k == "id"}
    wanted = ids if ids is not None else [SINGLETON]
    return {
        "accountId": call.account.id, "state": _state_of(obj),
        "list": [item for i in dict.fromkeys(wanted) if i == SINGLETON],
        "notFound": [i for i in dict.fromkeys(wanted) if i != SINGLETON],
    }  # fmt: skip


def _check_patch(patch: dict[str, Any]) -> dict[str, Any]:
    """The new values of a VacationResponse patch; ValueError names the bad property."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        if key == "id":
            if value != SINGLETON:
                raise ValueError("id")
        elif key == "isEnabled":
            if not isinstance(value, bool):
                raise ValueError(key)
            out[key] = value
        elif key in ("fromDate", "toDate"):
            if value is not None:
                if not isinstance(value, str) or not value.endswith("Z"):
                    raise ValueError(key)
                try:
                    _iso(value)
                except ValueError:
                    raise ValueError(key) from None
            out[key] = value
        elif key in ("subject", "textBody", "htmlBody"):
            if value is not None and (not isinstance(value, str) or len(value) > 64 * 1024 or "\0" in value):
                raise ValueError(key)
            out[key] = value
        else:
            raise ValueError(key)
    return out


@method("VacationResponse/set", VACATION)
async def vacation_set(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    create, update, destroy = set_counts(args, acct.ctx.cfg.jmap.max_objects_in_set)
    obj = await current(acct)
    old_state = _state_of(obj)
    if args.get("ifInState") not in (None, old_state):
        raise MethodError("stateMismatch", f"state is {old_state}")
    # §8.2: the singleton cannot be created or destroyed.
    not_created = {cid: set_error("singleton", "the VacationResponse is a singleton") for cid in create}
    not_destroyed = {i: set_error("singleton", "the VacationResponse cannot be destroyed") for i in destroy}
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    new_obj = obj
    for oid, patch in update.items():
        if oid != SINGLETON:
            not_updated[oid] = set_error("notFound")
            continue
        try:
            changes = _check_patch(patch)
        except ValueError as exc:
            not_updated[oid] = set_error("invalidProperties", f"bad {exc}", properties=[str(exc)])
            continue
        candidate = {**new_obj, **changes}
        try:
            await _apply(acct, candidate)
        except (SieveSyntaxError, StoreError) as exc:
            not_updated[oid] = set_error("forbidden", f"cannot store the vacation response: {exc}")
            continue
        new_obj = candidate
        updated[oid] = None
    return {
        "accountId": acct.id, "oldState": old_state, "newState": _state_of(new_obj),
        "created": None, "notCreated": not_created or None, "updated": updated or None,
        "notUpdated": not_updated or None, "destroyed": None, "notDestroyed": not_destroyed or None,
    }  # fmt: skip


async def _apply(acct: Account, obj: dict[str, Any]) -> None:
    """Write the script for ``obj``; no other script is read or touched. It is not counted
    against ``[managesieve] max_scripts`` when written here (a system script)."""
    addresses = [i["email"] for i in await identities(acct)]
    text = generate(obj, acct.ctx.cfg.jmap.vacation_days, addresses)
    compile_script(text)  # never store a script Sieve would refuse
    await acct.store.put_sieve_script(acct.user_id, SCRIPT, text, 0, 0)
