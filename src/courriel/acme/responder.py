"""A plain-HTTP responder for HTTP-01 on port 80 (``[acme] http_listen``).

The CA validates ``http://NAME/.well-known/acme-challenge/TOKEN`` on port 80 (RFC 8555
§8.3), while a production ``http`` listener serves HTTPS on 443. This answers the challenge
paths from the same token map as the web part and redirects everything else to https://
(301), so port 80 needs no web server of its own. One request per connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from courriel.acme import challenges
from courriel.config import parse_listen
from courriel.net import Connection, Listener

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.acme")

#: The request head must fit in this (request line and headers).
MAX_HEAD = 8192
PREFIX = "/.well-known/acme-challenge/"
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


class BadRequest(ValueError):
    pass


def parse_head(raw: bytes) -> tuple[str, str, str]:
    """(method, target, host) of an HTTP/1.x request head (RFC 9112 §3)."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("non-ASCII request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest("bad request line")
    host = ""
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "host":
            host = value.strip()
    if host and not _HOST.fullmatch(host):
        raise BadRequest("bad Host")
    return parts[0], parts[1], host


def respond(method: str, target: str, host: str, data_dir: Path) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body: the challenge answer, or a redirect to https://."""
    if target.startswith(PREFIX):
        if method not in ("GET", "HEAD"):
            return 405, {"Allow": "GET, HEAD"}, b"method not allowed\n"
        found = challenges.get(data_dir, target[len(PREFIX) :])
        if found is None:
            return 404, {}, b"no such challenge\n"
        return 200, {"Content-Type": "application/octet-stream"}, found.encode()
    if not host:
        return 400, {}, b"no Host\n"
    name = host.rsplit(":", 1)[0] if not host.endswith("]") and host.count(":") == 1 else host
    return 301, {"Location": f"https://{name}{target}"}, b""


REASONS = {200: "OK", 301: "Moved Permanently", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class Responder:
    name = "acme-http"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.listener = Listener(self.name, parse_listen(ctx.cfg.acme.http_listen, "acme.http_listen"),
                                 self.handle, ctx.connections, read_limit=MAX_HEAD)  # fmt: skip

    async def start(self) -> list[tuple[str, int]]:
        return await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    async def handle(self, conn: Connection) -> None:
        try:
            head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 10)
            method, target, host = parse_head(head[:-4])
            status, headers, body = respond(method, target, host, self.ctx.cfg.data_dir)
        except (asyncio.LimitOverrunError, BadRequest, ValueError):
            status, headers, body = 400, {}, b"bad request\n"
            method = "GET"
        except (asyncio.IncompleteReadError, TimeoutError):
            return
        lines = [f"HTTP/1.1 {status} {REASONS[status]}", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (b"" if method == "HEAD" else body))
        await conn.writer.drain()
