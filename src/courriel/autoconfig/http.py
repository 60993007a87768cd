"""Routes of the autoconfiguration part.

- ``GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=A`` and
  ``GET /mail/config-v1.1.xml`` (Thunderbird asks both, at autoconfig.DOMAIN and DOMAIN);
- ``POST /autodiscover/autodiscover.xml`` (any case; Outlook sends an XML request naming the
  address; GET is answered too, for clients that try it);
- ``GET /apple/mail.mobileconfig?email=A`` (an Apple configuration profile);
- ``GET /.well-known/mta-sts.txt`` (RFC 8461 §3.2, asked at mta-sts.DOMAIN).

Only local domains get an answer (404 otherwise), so the host does not advertise itself for
anyone's domain. Nothing here needs a password and nothing reveals whether a user exists.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from courriel.autoconfig import documents
from courriel.dnssetup.records import mta_sts_policy
from courriel.web.app import WebPart

if TYPE_CHECKING:
    from courriel.server import Context

#: An Outlook request is a few hundred bytes; anything much larger is not one.
MAX_AUTODISCOVER_REQUEST = 16 * 1024
_EMAIL_ELEMENT = re.compile(rb"<(?:\w+:)?EMailAddress>\s*([^<\s]{3,320})\s*</(?:\w+:)?EMailAddress>")
_ADDRESS = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}$")


def _domain_of(address: str) -> str | None:
    if not _ADDRESS.match(address):
        return None
    return address.rpartition("@")[2].lower().rstrip(".")


class Autoconfig:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _local(self, domain: str | None) -> bool:
        return bool(domain) and await self.ctx.store.is_local_domain(domain or "")

    async def thunderbird(self, request: Request) -> Response:
        address = request.query_params.get("emailaddress", "")
        domain = _domain_of(address) if address else None
        if domain is None:  # no address: the domain from the host name (autoconfig.DOMAIN)
            host = (request.url.hostname or "").lower()
            domain = host.removeprefix("autoconfig.") if host.startswith("autoconfig.") else host
        if not await self._local(domain):
            return PlainTextResponse("no configuration for this domain\n", status_code=404)
        assert domain is not None
        return Response(documents.thunderbird(self.ctx.cfg, domain), media_type="application/xml; charset=utf-8")

    async def outlook(self, request: Request) -> Response:
        if request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_AUTODISCOVER_REQUEST:
                    return PlainTextResponse("request too large\n", status_code=413)
            found = _EMAIL_ELEMENT.search(body)
            address = found.group(1).decode("utf-8", "replace") if found else ""
        else:
            address = request.query_params.get("email", request.query_params.get("emailaddress", ""))
        domain = _domain_of(address)
        if domain is None:
            return PlainTextResponse("no EMailAddress in the request\n", status_code=400)
        if not await self._local(domain):
            return PlainTextResponse("no configuration for this domain\n", status_code=404)
        return Response(documents.outlook(self.ctx.cfg, address), media_type="application/xml; charset=utf-8")

    async def apple(self, request: Request) -> Response:
        address = request.query_params.get("email", "")
        domain = _domain_of(address)
        if domain is None:
            return PlainTextResponse("give ?email=ADDRESS\n", status_code=400)
        if not await self._local(domain):
            return PlainTextResponse("no configuration for this domain\n", status_code=404)
        try:
            profile = documents.apple_profile(self.ctx.cfg, address)
        except ValueError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=404)
        return Response(
            profile,
            media_type="application/x-apple-aspen-config",
            headers={"Content-Disposition": 'attachment; filename="mail.mobileconfig"'},
        )

    async def mta_sts(self, request: Request) -> Response:
        host = (request.url.hostname or "").lower()
        if host.startswith("mta-sts.") and not await self._local(host.removeprefix("mta-sts.")):
            return PlainTextResponse("no policy for this domain\n", status_code=404)
        return PlainTextResponse(mta_sts_policy(self.ctx.cfg), headers={"Cache-Control": "max-age=300"})


def part(ctx: Context) -> WebPart:
    a = Autoconfig(ctx)
    routes = [
        Route("/.well-known/autoconfig/mail/config-v1.1.xml", a.thunderbird, methods=["GET"]),
        Route("/mail/config-v1.1.xml", a.thunderbird, methods=["GET"]),
        Route("/.well-known/mta-sts.txt", a.mta_sts, methods=["GET"]),
        Route("/apple/mail.mobileconfig", a.apple, methods=["GET"]),
    ]
    for path in ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml", "/AutoDiscover/AutoDiscover.xml"):
        routes.append(Route(path, a.outlook, methods=["GET", "POST"]))
    return WebPart("autoconfig", routes=routes)
