"""The JMAP part of the http listener: session resource, API, blobs, EventSource (RFC 8620).

Routes: ``/.well-known/jmap`` and ``/jmap/session`` (the session resource, §2),
``POST /jmap/api`` (§3), ``POST /jmap/upload/{accountId}`` and
``GET /jmap/download/{accountId}/{blobId}/{name}`` (§6), ``GET /jmap/eventsource`` (§7.3).
Every route needs Basic or bearer authentication (:mod:`.auth`); request-level errors are
RFC 7807 problem details (§3.6.1).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from courriel.jmap import blob as blobs
from courriel.jmap import (  # noqa: F401 (the methods register themselves)
    email,
    emailset,
    mailbox,
    push,
    query,
    submission,
    submitted,
    thread,
    vacation,
)
from courriel.jmap.auth import Principal, authenticate
from courriel.jmap.core import (
    CAPABILITIES,
    CORE,
    MAIL,
    SUBMISSION,
    VACATION,
    RequestError,
    parse_request,
    process,
)
from courriel.jmap.index import Account
from courriel.trace import events
from courriel.web.app import WebPart
from courriel.web.auth import client_ip

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.jmap")

_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
_SWEEP_EVERY = 3600.0
_MAX_STATES = 10_000


def problem(err: RequestError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, media_type="application/problem+json")


def _unauthorized() -> Response:
    return Response(
        b'{"type":"about:blank","status":401,"detail":"authentication required"}',
        status_code=401,
        media_type="application/problem+json",
        headers={"WWW-Authenticate": 'Basic realm="courriel", charset="UTF-8", Bearer realm="courriel"'},
    )


class Jmap:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.requests: Counter[int] = Counter()
        self.uploads: Counter[int] = Counter()
        self._sweeper: asyncio.Task[None] | None = None
        #: Session states by (user id, address, API base URL), for the configuration object
        #: ``_states_cfg``: hashing the session resource on every API response cost more than
        #: the rest of a small request.
        self._states: dict[tuple[int, str, str], str] = {}
        self._states_cfg: object = ctx.cfg

    # --- helpers ---------------------------------------------------------------------------
    def base_url(self, req: HttpRequest) -> str:
        public = self.ctx.cfg.http.public_url.rstrip("/")
        return public or f"{req.url.scheme}://{req.url.netloc}"

    def account(self, who: Principal, req: HttpRequest) -> Account:
        acct = Account(self.ctx, who.user_id, who.address, client_ip(req), req.url.scheme == "https")
        acct.client = events.client_text(acct.peer_ip, req.client.port if req.client else 0)
        return acct

    def session(self, who: Principal, req: HttpRequest) -> dict[str, Any]:
        cfg = self.ctx.cfg
        base = self.base_url(req) + "/jmap"
        acct_id = f"A{who.user_id}"
        body: dict[str, Any] = {
            "capabilities": {
                CORE: {
                    "maxSizeUpload": cfg.jmap.max_size_upload,
                    "maxConcurrentUpload": cfg.jmap.max_concurrent_upload,
                    "maxSizeRequest": cfg.http.max_request_size,
                    "maxConcurrentRequests": cfg.jmap.max_concurrent_requests,
                    "maxCallsInRequest": cfg.jmap.max_calls_in_request,
                    "maxObjectsInGet": cfg.jmap.max_objects_in_get,
                    "maxObjectsInSet": cfg.jmap.max_objects_in_set,
                    "collationAlgorithms": ["i;ascii-casemap", "i;unicode-casemap"],
                },
                MAIL: {},
                SUBMISSION: {},
                VACATION: {},
            },
            "accounts": {
                acct_id: {
                    "name": who.address,
                    "isPersonal": True,
                    "isReadOnly": False,
                    "accountCapabilities": {
                        MAIL: {
                            "maxMailboxesPerEmail": None,
                            "maxMailboxDepth": None,
                            "maxSizeMailboxName": 1024,
                            "maxSizeAttachmentsPerEmail": cfg.jmap.max_size_upload,
                            "emailQuerySortOptions": list(query.SORTS),
                            "mayCreateTopLevelMailbox": True,
                        },
                        SUBMISSION: {"maxDelayedSend": 0, "submissionExtensions": {}},
                        VACATION: {},
                    },
                }
            },
            "primaryAccounts": {MAIL: acct_id, SUBMISSION: acct_id, VACATION: acct_id, CORE: acct_id},
            "username": who.address,
            "apiUrl": f"{base}/api",
            "downloadUrl": f"{base}/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}",
            "uploadUrl": f"{base}/upload/{{accountId}}",
            "eventSourceUrl": f"{base}/eventsource?types={{types}}&closeafter={{closeafter}}&ping={{ping}}",
        }
        key = (who.user_id, who.address, base)
        if self._states_cfg is not cfg:  # a reloaded configuration: limits may differ
            self._states.clear()
            self._states_cfg = cfg
        state = self._states.get(key)
        if state is None:  # the same for every request of the user
            if len(self._states) >= _MAX_STATES:
                self._states.clear()
            state = self._states[key] = session_state(body)
        body["state"] = state
        return body

    def session_state_of(self, who: Principal, req: HttpRequest) -> str:
        """The session state (§2) for an API response, without building the session again."""
        state = self._states.get((who.user_id, who.address, self.base_url(req) + "/jmap"))
        if state is None or self._states_cfg is not self.ctx.cfg:
            return str(self.session(who, req)["state"])
        return state

    async def _auth(self, req: HttpRequest) -> Principal | None:
        return await authenticate(self.ctx, req)

    # --- endpoints -------------------------------------------------------------------------
    async def session_endpoint(self, req: HttpRequest) -> Response:
        who = await self._auth(req)
        if who is None:
            return _unauthorized()
        return JSONResponse(self.session(who, req), headers={"Cache-Control": "no-cache, no-store"})

    async def api(self, req: HttpRequest) -> Response:
        who = await self._auth(req)
        if who is None:
            return _unauthorized()
        cfg = self.ctx.cfg
        if self.requests[who.user_id] >= cfg.jmap.max_concurrent_requests:
            return problem(RequestError("limit", "too many concurrent requests", 429, "maxConcurrentRequests"))
        self.requests[who.user_id] += 1
        try:
            body = await req.body()
            try:
                request = parse_request(
                    body, max_size=cfg.http.max_request_size, max_calls=cfg.jmap.max_calls_in_request,
                    capabilities=CAPABILITIES,
                )  # fmt: skip
            except RequestError as exc:
                return problem(exc)
            acct = self.account(who, req)
            result = await process(request, acct)
            acct.flush_retrievals()
        finally:
            self.requests[who.user_id] -= 1
            if not self.requests[who.user_id]:
                del self.requests[who.user_id]
        result["sessionState"] = self.session_state_of(who, req)
        return JSONResponse(result)

    async def upload(self, req: HttpRequest) -> Response:
        who = await self._auth(req)
        if who is None:
            return _unauthorized()
        if req.path_params["account"] != f"A{who.user_id}":
            return problem(RequestError("accountNotFound", "no such account", 404))
        cfg = self.ctx.cfg.jmap
        if self.uploads[who.user_id] >= cfg.max_concurrent_upload:
            return problem(RequestError("limit", "too many concurrent uploads", 429, "maxConcurrentUpload"))
        self.uploads[who.user_id] += 1
        try:
            length = req.headers.get("content-length", "")
            if length.isdigit() and int(length) > cfg.max_size_upload:
                raise blobs.UploadError("maxSizeUpload", f"larger than {cfg.max_size_upload} octets")
            data = bytearray()
            async for chunk in req.stream():
                data += chunk
                if len(data) > cfg.max_size_upload:
                    raise blobs.UploadError("maxSizeUpload", f"larger than {cfg.max_size_upload} octets")
            ctype = req.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
            if not _MEDIA_TYPE.match(ctype):
                ctype = "application/octet-stream"
            blob_id = await blobs.save_upload(self.ctx, who.user_id, bytes(data), ctype)
        except blobs.UploadError as exc:
            return problem(RequestError("limit", exc.detail, 413, exc.limit))
        finally:
            self.uploads[who.user_id] -= 1
            if not self.uploads[who.user_id]:
                del self.uploads[who.user_id]
        return JSONResponse(
            {"accountId": f"A{who.user_id}", "blobId": blob_id, "type": ctype, "size": len(data)}, status_code=201
        )

    async def download(self, req: HttpRequest) -> Response:
        who = await self._auth(req)
        if who is None:
            return _unauthorized()
        if req.path_params["account"] != f"A{who.user_id}":
            return Response(status_code=404)
        acct = self.account(who, req)
        try:
            data, ctype = await blobs.read_blob(acct, req.path_params["blob"])
        except LookupError:
            return Response(b"blob not found\n", status_code=404, media_type="text/plain")
        whole = blobs.message_content(req.path_params["blob"])
        if whole is not None:  # the whole message: a retrieval for its journey
            acct.retrieved.add(whole)
            acct.flush_retrievals()
        accept = req.query_params.get("accept", "")
        if accept and _MEDIA_TYPE.match(accept):
            ctype = accept
        name = req.path_params["name"]
        disposition = "attachment; filename*=UTF-8''" + urllib.parse.quote(name, safe="")
        return Response(
            data, media_type=ctype,
            headers={"Content-Disposition": disposition, "Cache-Control": "private, immutable, max-age=31536000"},
        )  # fmt: skip

    async def eventsource(self, req: HttpRequest) -> Response:
        who = await self._auth(req)
        if who is None:
            return _unauthorized()
        try:
            params = push.parse_params(
                req.query_params.get("types"), req.query_params.get("closeafter"), req.query_params.get("ping")
            )
        except ValueError as exc:
            return problem(RequestError("invalidArguments", str(exc)))
        if push.STREAMS[who.user_id] >= self.ctx.cfg.jmap.max_event_streams:
            return problem(RequestError("limit", "too many event streams", 429, "maxEventStreams"))
        hub = self.ctx.store.changes
        user_id = who.user_id
        push.STREAMS[user_id] += 1

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in push.stream(lambda cb: hub.subscribe(user_id, cb), f"A{user_id}", params):
                    yield chunk
            finally:
                push.STREAMS[user_id] -= 1
                if not push.STREAMS[user_id]:
                    del push.STREAMS[user_id]

        return StreamingResponse(
            events(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.to_thread(blobs.sweep_all, self.ctx)
                await asyncio.sleep(_SWEEP_EVERY)

        self._sweeper = asyncio.create_task(sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except (asyncio.CancelledError, Exception):
                pass


def session_state(session: dict[str, Any]) -> str:
    body = {k: v for k, v in session.items() if k != "state"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _route(path: str, endpoint: Callable[[HttpRequest], Awaitable[Response]], methods: list[str]) -> Route:
    return Route(path, endpoint, methods=methods)


def part(ctx: Context) -> WebPart:
    j = Jmap(ctx)
    routes = [
        _route("/.well-known/jmap", j.session_endpoint, ["GET"]),
        _route("/jmap/session", j.session_endpoint, ["GET"]),
        _route("/jmap/api", j.api, ["POST"]),
        _route("/jmap/upload/{account}", j.upload, ["POST"]),
        _route("/jmap/download/{account}/{blob}/{name}", j.download, ["GET"]),
        _route("/jmap/eventsource", j.eventsource, ["GET"]),
    ]
    return WebPart("jmap", routes=routes, on_startup=[j.start], on_shutdown=[j.stop], extra={"jmap": j})
