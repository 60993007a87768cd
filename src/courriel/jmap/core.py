"""The JMAP request envelope (RFC 8620 §3): validation, result references, dispatch, errors.

:func:`parse_request` is pure (bytes in, :class:`Request` or :class:`RequestError` out) and is
the fuzzing target. :func:`process` runs the calls of one request in order through the one
dispatch table :data:`METHODS`; a :class:`MethodError` raised by a handler becomes an
``error`` response for that call only (§3.6.2), anything else a ``serverFail``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from courriel.jmap.index import Account

log = logging.getLogger("courriel.jmap")

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"  # RFC 8621 §8
CAPABILITIES = frozenset({CORE, MAIL, SUBMISSION, VACATION})
MAX_ID = 255  # RFC 8620 §1.2: 1-255 octets of [A-Za-z0-9_-]
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class RequestError(Exception):
    """A request-level error (RFC 8620 §3.6.1), sent as RFC 7807 problem details."""

    def __init__(self, kind: str, detail: str, status: int = 400, limit: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.limit = limit

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": f"urn:ietf:params:jmap:error:{self.kind}", "status": self.status}
        out["detail"] = self.detail
        if self.limit:
            out["limit"] = self.limit
        return out


class MethodError(Exception):
    """A method-level error (RFC 8620 §3.6.2): the call fails, the request goes on."""

    def __init__(self, kind: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(description or kind)
        self.kind = kind
        self.description = description
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, **self.extra}
        if self.description:
            out["description"] = self.description
        return out


def invalid(description: str) -> MethodError:
    return MethodError("invalidArguments", description)


@dataclass(frozen=True, slots=True)
class Invocation:
    name: str
    arguments: dict[str, Any]
    call_id: str


@dataclass(frozen=True, slots=True)
class Request:
    using: tuple[str, ...]
    calls: tuple[Invocation, ...]
    created_ids: dict[str, str] | None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_request(
    body: bytes, *, max_size: int, max_calls: int, capabilities: frozenset[str] = CAPABILITIES
) -> Request:
    """Validate a JMAP API request body (RFC 8620 §3.3); pure, raises :class:`RequestError`."""
    if len(body) > max_size:
        raise RequestError("limit", f"request larger than {max_size} octets", 400, "maxSizeRequest")
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
        # I-JSON has no lone surrogates (RFC 7493 §2.1), which "\ud800" escapes can make
        # and no UTF-8 response could echo back: UnicodeEncodeError is a ValueError.
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RequestError("notJSON", f"request body is not I-JSON: {str(exc)[:100]}") from None
    if not isinstance(obj, dict):
        raise RequestError("notRequest", "request must be a JSON object")
    using, calls, created = obj.get("using"), obj.get("methodCalls"), obj.get("createdIds")
    if not isinstance(using, list) or not all(isinstance(u, str) for u in using):
        raise RequestError("notRequest", "using must be an array of strings")
    if not isinstance(calls, list):
        raise RequestError("notRequest", "methodCalls must be an array")
    if created is not None and not (
        isinstance(created, dict) and all(isinstance(v, str) for v in created.values())
    ):
        raise RequestError("notRequest", "createdIds must map ids to ids")
    unknown = [u for u in using if u not in capabilities]
    if unknown:
        raise RequestError("unknownCapability", f"unknown capability {unknown[0][:200]}")
    if len(calls) > max_calls:
        raise RequestError("limit", f"more than {max_calls} method calls", 400, "maxCallsInRequest")
    out = []
    for call in calls:
        if not (
            isinstance(call, list)
            and len(call) == 3
            and isinstance(call[0], str)
            and isinstance(call[1], dict)
            and isinstance(call[2], str)
        ):
            raise RequestError("notRequest", "each method call must be [name, arguments, callId]")
        out.append(Invocation(call[0], call[1], call[2]))
    return Request(tuple(using), tuple(out), dict(created) if created is not None else None)


# --- result references (§3.7) ------------------------------------------------------------


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")  # RFC 6901 §4


def evaluate_pointer(value: Any, path: str) -> Any:
    """RFC 6901 JSON Pointer with JMAP's ``*`` over arrays (RFC 8620 §3.7); KeyError on a miss."""
    if path == "":
        return value
    if not path.startswith("/"):
        raise KeyError(path)
    return _walk(value, [_unescape(t) for t in path[1:].split("/")])


def _walk(value: Any, tokens: list[str]) -> Any:
    for i, token in enumerate(tokens):
        if isinstance(value, list):
            if token == "*":
                out: list[Any] = []
                for item in value:
                    got = _walk(item, tokens[i + 1 :])
                    if isinstance(got, list):
                        out.extend(got)  # arrays from each item are flattened
                    else:
                        out.append(got)
                return out
            if not token.isdigit() or (len(token) > 1 and token[0] == "0") or int(token) >= len(value):
                raise KeyError(token)
            value = value[int(token)]
        elif isinstance(value, dict):
            if token not in value:
                raise KeyError(token)
            value = value[token]
        else:
            raise KeyError(token)
    return value


def resolve_references(args: dict[str, Any], responses: list[tuple[str, dict[str, Any], str]]) -> dict[str, Any]:
    """Replace ``#name`` arguments by the values they point at (RFC 8620 §3.7)."""
    if not any(k.startswith("#") for k in args):
        return args
    out = dict(args)
    for key, ref in args.items():
        if not key.startswith("#"):
            continue
        name = key[1:]
        if name in args:
            raise invalid(f"both {name} and #{name} given")
        if not (
            isinstance(ref, dict)
            and isinstance(ref.get("resultOf"), str)
            and isinstance(ref.get("name"), str)
            and isinstance(ref.get("path"), str)
        ):
            raise invalid(f"#{name} is not a ResultReference")
        for rname, rargs, rid in responses:
            if rid == ref["resultOf"]:
                if rname != ref["name"]:
                    raise MethodError("invalidResultReference", f"{ref['resultOf']} is {rname}, not {ref['name']}")
                try:
                    out[name] = evaluate_pointer(rargs, ref["path"])
                except KeyError:
                    raise MethodError("invalidResultReference", f"path {ref['path']} not found") from None
                break
        else:
            raise MethodError("invalidResultReference", f"no response with id {ref['resultOf']}")
        del out[key]
    return out


# --- dispatch ------------------------------------------------------------------------------


@dataclass
class Call:
    """What a method handler gets besides its arguments."""

    account: Account
    using: frozenset[str]
    created_ids: dict[str, str]
    #: Responses a method adds after its own (e.g. the implicit Email/set of §7.5).
    extra: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def resolve_id(self, value: str) -> str:
        """An id, or ``#creationId`` from an earlier create in this request (§5.3)."""
        if value.startswith("#"):
            real = self.created_ids.get(value[1:])
            if real is None:
                raise MethodError("invalidArguments", f"unknown creation id {value}")
            return real
        return value


Handler = Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Method:
    capability: str
    handler: Handler


#: The dispatch table, filled by the method modules (see :mod:`courriel.jmap.methods`).
METHODS: dict[str, Method] = {}


def method(name: str, capability: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name] = Method(capability, fn)
        return fn

    return register


async def _echo(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return args  # RFC 8620 §4


METHODS["Core/echo"] = Method(CORE, _echo)


async def process(request: Request, account: Account) -> dict[str, Any]:
    """Run every call in order; returns the Response object (§3.4) without sessionState."""
    using = frozenset(request.using)
    created = dict(request.created_ids or {})
    responses: list[tuple[str, dict[str, Any], str]] = []
    for inv in request.calls:
        call = Call(account, using, created)
        try:
            m = METHODS.get(inv.name)
            if m is None or m.capability not in using:
                raise MethodError("unknownMethod", f"{inv.name} is not known (or its capability not used)")
            args = resolve_references(inv.arguments, responses)
            if "accountId" in args and args["accountId"] != account.id:
                raise MethodError("accountNotFound")
            result = await m.handler(call, args)
            responses.append((inv.name, result, inv.call_id))
            responses.extend((name, body, inv.call_id) for name, body in call.extra)
        except MethodError as exc:
            responses.append(("error", exc.body(), inv.call_id))
        except Exception:
            log.exception("jmap: %s failed", inv.name)
            responses.append(("error", {"type": "serverFail"}, inv.call_id))
    out: dict[str, Any] = {"methodResponses": [[n, a, i] for n, a, i in responses]}
    if request.created_ids is not None:
        out["createdIds"] = created
    return out


def valid_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and all(c in _ID_CHARS for c in value)
