"""The web part answering HTTP-01 challenges: ``GET /.well-known/acme-challenge/{token}``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from courriel.acme import challenges
from courriel.web.app import WebPart

if TYPE_CHECKING:
    from courriel.server import Context


def part(ctx: Context) -> WebPart:
    data_dir = ctx.cfg.data_dir

    async def answer(request: Request) -> Response:
        found = challenges.get(data_dir, request.path_params["token"])
        if found is None:
            return PlainTextResponse("no such challenge\n", status_code=404)
        # RFC 8555 §8.3: the body is the key authorization.
        return Response(found, media_type="application/octet-stream")

    return WebPart("acme", routes=[Route("/.well-known/acme-challenge/{token}", answer, methods=["GET"])])
