"""The outbound SMTP client (RFC 5321): one connection to one destination host, several
messages over it.

- EHLO (HELO when EHLO is refused), STARTTLS when offered (RFC 3207; opportunistic unless
  the route requires it or verification is on), AUTH PLAIN/LOGIN towards a smarthost.
- MAIL, RCPT and DATA are pipelined when the server offers PIPELINING (RFC 2920 §3.1): the
  commands of one envelope are written together and the replies read in order.
- SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531) and DSN (RFC 3461) parameters
  are passed on when the server offers them; a message that needs SMTPUTF8 or 8BITMIME
  where the server has neither fails with a clear permanent error.

Replies are classified per recipient: 2xx delivered, 4xx (and lost connections) retried,
5xx final.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field

#: Longest reply line accepted from a server (RFC 5321 §4.5.3.1.5 says 512).
MAX_REPLY_LINE = 4096
MAX_REPLY_LINES = 100


class SmtpClientError(Exception):
    """The conversation failed as a whole: ``code`` is the reply (or 421 for a lost link)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str  # lines joined with "; "

    @property
    def line(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(slots=True)
class Envelope:
    mail_from: str
    recipients: list[tuple[str, str | None, str | None]]  # address, NOTIFY, ORCPT
    data: bytes
    envid: str | None = None
    ret: str | None = None
    smtputf8: bool = False
    body_8bit: bool = False


@dataclass(slots=True)
class Outcome:
    """What became of each recipient of one envelope: its reply (or the error that ended all)."""

    replies: dict[str, Reply] = field(default_factory=dict)
    dsn_passed: bool = False  # the server took our DSN parameters (RFC 3461 §4)


def _xtext(value: str) -> str:
    """RFC 3461 §4: xtext encoding of ENVID and ORCPT values."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in value)


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: double every leading dot; make sure the data ends with CRLF."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


class SmtpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float, peer: str) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.peer = peer  # "host[ip]" for logs and Remote-MTA
        self.extensions: dict[str, str] = {}
        self.tls = False
        self.sent = 0

    @classmethod
    async def connect(cls, ip: str, port: int, timeout: float, peer: str, tls: ssl.SSLContext | None = None,
                      server_hostname: str | None = None) -> SmtpClient:  # fmt: skip
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    ip, port, ssl=tls, server_hostname=server_hostname if tls else None, limit=MAX_REPLY_LINE * 2
                ),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise SmtpClientError(421, f"cannot connect to {peer}: {exc or 'timeout'}") from None
        from courriel.trace.recorder import trace_outbound

        reader, writer = trace_outbound(reader, writer, ip, port, tls is not None)  # session tracing, when on
        client = cls(reader, writer, timeout, peer)
        client.tls = tls is not None
        greeting = await client.read_reply()
        if greeting.code != 220:
            await client.close()
            raise SmtpClientError(greeting.code if greeting.code >= 400 else 421, f"greeting: {greeting.line}")
        return client

    async def read_reply(self) -> Reply:
        lines: list[str] = []
        code = 0
        while True:
            try:
                raw = await asyncio.wait_for(self.reader.readline(), self.timeout)
            except (OSError, TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
                raise SmtpClientError(421, f"lost {self.peer}: {exc or 'timeout'}") from None
            if not raw.endswith(b"\n"):
                raise SmtpClientError(421, f"{self.peer} closed the connection")
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise SmtpClientError(421, f"{self.peer}: malformed reply {line[:80]!r}")
            code = int(line[:3])
            lines.append(line[4:])
            if len(lines) > MAX_REPLY_LINES:
                raise SmtpClientError(421, f"{self.peer}: reply too long")
            if len(line) == 3 or line[3] == " ":
                return Reply(code, "; ".join(lines))

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise SmtpClientError(421, f"lost {self.peer}: {exc or 'timeout'}") from None

    async def command(self, line: str) -> Reply:
        await self.write(line.encode("utf-8") + b"\r\n")
        return await self.read_reply()

    async def ehlo(self, name: str) -> None:
        reply = await self.command(f"EHLO {name}")
        if reply.code != 250:
            reply = await self.command(f"HELO {name}")
            if reply.code != 250:
                raise SmtpClientError(reply.code, f"HELO: {reply.line}")
            self.extensions = {}
            return
        self.extensions = {}
        for item in reply.text.split("; ")[1:]:
            keyword, _, params = item.partition(" ")
            self.extensions[keyword.upper()] = params

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise SmtpClientError(reply.code, f"STARTTLS: {reply.line}")
        try:
            await asyncio.wait_for(self.writer.start_tls(context, server_hostname=server_hostname), self.timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise SmtpClientError(421, f"TLS with {self.peer} failed: {exc}") from None
        self.tls = True

    async def auth(self, user: str, password: str) -> None:
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            reply = await self.command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            reply = await self.command("AUTH LOGIN")
            if reply.code == 334:
                reply = await self.command(base64.b64encode(user.encode()).decode())
            if reply.code == 334:
                reply = await self.command(base64.b64encode(password.encode()).decode())
        else:
            raise SmtpClientError(530, f"{self.peer} offers no AUTH mechanism we support")
        if reply.code != 235:
            raise SmtpClientError(reply.code if reply.code >= 400 else 535, f"AUTH: {reply.line}")

    def _mail_params(self, env: Envelope) -> str:
        params: list[str] = []
        if "SIZE" in self.extensions:
            params.append(f"SIZE={len(env.data)}")
        if env.body_8bit and "8BITMIME" in self.extensions:
            params.append("BODY=8BITMIME")
        if env.smtputf8:
            params.append("SMTPUTF8")
        if "DSN" in self.extensions:
            if env.ret:
                params.append(f"RET={env.ret}")
            if env.envid:
                params.append(f"ENVID={_xtext(env.envid)}")
        return "".join(" " + p for p in params)

    def _rcpt_params(self, notify: str | None, orcpt: str | None) -> str:
        if "DSN" not in self.extensions:
            return ""
        out = ""
        if notify:
            out += f" NOTIFY={notify}"
        if orcpt:
            kind, _, addr = orcpt.partition(";")
            out += f" ORCPT={kind};{_xtext(addr)}"
        return out

    async def send(self, env: Envelope) -> Outcome:
        """One transaction. Raises :class:`SmtpClientError` when it failed for every recipient."""
        if env.smtputf8 and "SMTPUTF8" not in self.extensions:
            # RFC 6531 §3.2: without SMTPUTF8 the message cannot be relayed as is.
            raise SmtpClientError(553, f"5.6.7 {self.peer} does not support SMTPUTF8, which this message needs")
        if env.body_8bit and "8BITMIME" not in self.extensions:
            raise SmtpClientError(554, f"5.6.3 {self.peer} does not support 8BITMIME, which this message needs")
        max_size = self.extensions.get("SIZE", "").strip()
        if max_size.isdigit() and int(max_size) and len(env.data) > int(max_size):
            raise SmtpClientError(552, f"5.3.4 message too large for {self.peer} (limit {max_size})")
        outcome = Outcome(dsn_passed="DSN" in self.extensions)
        if self.sent:
            reset = await self.command("RSET")
            if reply_class(reset) != 2:
                raise SmtpClientError(421, f"RSET: {reset.line}")
        self.sent += 1
        commands = [f"MAIL FROM:<{env.mail_from}>{self._mail_params(env)}"]
        commands += [f"RCPT TO:<{a}>{self._rcpt_params(n, o)}" for a, n, o in env.recipients]
        pipelining = "PIPELINING" in self.extensions
        replies: list[Reply] = []
        if pipelining:
            # RFC 2920 §3.1: MAIL and RCPT may be sent together; DATA ends the group.
            await self.write(("\r\n".join([*commands, "DATA"]) + "\r\n").encode("utf-8"))
            for _ in range(len(commands) + 1):
                replies.append(await self.read_reply())
        else:
            for cmd in commands:
                replies.append(await self.command(cmd))
                if replies[0].code != 250:
                    break
        mail = replies[0]
        if mail.code != 250:
            if pipelining and replies[-1].code == 354:
                await self.write(b".\r\n")  # the server wants data anyway: end it empty
                await self.read_reply()
            raise SmtpClientError(mail.code, f"MAIL: {mail.line}")
        accepted: list[str] = []
        for (address, _, _), reply in zip(env.recipients, replies[1 : 1 + len(env.recipients)], strict=False):
            outcome.replies[address] = reply
            if reply.code in (250, 251):
                accepted.append(address)
        if not accepted:
            if pipelining and replies[-1].code == 354:
                await self.write(b".\r\n")
                await self.read_reply()
            return outcome
        data_reply = replies[-1] if pipelining else await self.command("DATA")
        if data_reply.code != 354:
            for address in accepted:
                outcome.replies[address] = data_reply
            return outcome
        await self.write(dot_stuff(env.data) + b".\r\n")
        final = await self.read_reply()
        for address in accepted:
            outcome.replies[address] = final
        return outcome

    async def quit(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self.reader.readline(), 5)
        except (OSError, TimeoutError, ValueError):
            pass
        await self.close()

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


def reply_class(reply: Reply) -> int:
    return reply.code // 100
