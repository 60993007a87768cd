"""Small asyncio clients for the load test: SMTP, IMAP and POP3 over one loopback stream
each, enough of each protocol to drive a server hard from a single thread (200 sessions at
once) and to notice any answer that is not the expected success.

Every unexpected reply raises :class:`ProtocolError` carrying the exchange, so the load
test can count it and show it.
"""

from __future__ import annotations

import asyncio
import base64
import re

TIMEOUT = 60.0  # one reply; a server this slow is itself a failure


class ProtocolError(Exception):
    pass


class _Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def line(self) -> bytes:
        data = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
        if not data.endswith(b"\n"):
            raise ProtocolError(f"connection closed (got {data[:200]!r})")
        return data

    async def exactly(self, n: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), TIMEOUT)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2 / RFC 1939 §3: a leading dot is doubled; the data ends with CRLF."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    out = data.replace(b"\r\n.", b"\r\n..")
    return b"." + out if out.startswith(b".") else out


class Smtp(_Stream):
    @classmethod
    async def connect(cls, port: int) -> Smtp:
        conn = cls(*await asyncio.open_connection("127.0.0.1", port))
        try:
            await conn.expect(220)
            await conn.command(b"EHLO load.test", 250)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def reply(self) -> tuple[int, bytes]:
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line[3:4] != b"-":
                break
        try:
            return int(lines[0][:3]), b"".join(lines)
        except ValueError:
            raise ProtocolError(f"bad SMTP reply {lines!r}") from None

    async def expect(self, code: int, what: bytes = b"") -> bytes:
        got, text = await self.reply()
        if got != code:
            raise ProtocolError(f"SMTP {what[:80]!r}: expected {code}, got {text[:300]!r}")
        return text

    async def command(self, cmd: bytes, code: int) -> bytes:
        await self.send(cmd + b"\r\n")
        return await self.expect(code, cmd)

    async def auth_plain(self, user: str, password: str) -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode())
        await self.command(b"AUTH PLAIN " + token, 235)

    async def sendmail(self, sender: str, rcpts: list[str], data: bytes) -> None:
        await self.command(f"MAIL FROM:<{sender}>".encode(), 250)
        for rcpt in rcpts:
            await self.command(f"RCPT TO:<{rcpt}>".encode(), 250)
        await self.command(b"DATA", 354)
        await self.send(dot_stuff(data) + b".\r\n")
        await self.expect(250, b"end of DATA")

    async def quit(self) -> None:
        await self.command(b"QUIT", 221)
        await self.close()


_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Imap(_Stream):
    tag_n = 0

    @classmethod
    async def connect(cls, port: int, user: str, password: str) -> Imap:
        conn = cls(*await asyncio.open_connection("127.0.0.1", port))
        try:
            greeting = await conn.line()
            if not greeting.startswith(b"* OK"):
                raise ProtocolError(f"IMAP greeting {greeting!r}")
            await conn.command(f'LOGIN "{user}" "{password}"'.encode())
        except BaseException:
            await conn.close()
            raise
        return conn

    async def item(self) -> bytes:
        """One response line with its literals inlined (literal bytes kept as they are)."""
        out = b""
        while True:
            line = await self.line()
            out += line
            m = _LITERAL.search(line)
            if m is None:
                return out
            out += await self.exactly(int(m.group(1)))

    def _tag(self) -> bytes:
        self.tag_n += 1
        return b"L%d" % self.tag_n

    async def tagged(self, tag: bytes, cmd: bytes) -> tuple[bytes, list[bytes]]:
        untagged: list[bytes] = []
        while True:
            item = await self.item()
            if item.startswith(tag + b" "):
                if not item.startswith(tag + b" OK"):
                    raise ProtocolError(f"IMAP {cmd[:80]!r}: {item[:300]!r}")
                return item, untagged
            untagged.append(item)

    async def command(self, cmd: bytes) -> tuple[bytes, list[bytes]]:
        tag = self._tag()
        await self.send(tag + b" " + cmd + b"\r\n")
        return await self.tagged(tag, cmd)

    async def append(self, mailbox: str, data: bytes) -> int:
        """APPEND with a synchronizing literal; returns the UID from APPENDUID."""
        tag = self._tag()
        cmd = f'APPEND "{mailbox}" {{{len(data)}}}'.encode()
        await self.send(tag + b" " + cmd + b"\r\n")
        cont = await self.item()
        if not cont.startswith(b"+"):
            raise ProtocolError(f"IMAP APPEND: no continuation but {cont[:200]!r}")
        await self.send(data + b"\r\n")
        done, _ = await self.tagged(tag, cmd)
        m = re.search(rb"\[APPENDUID \d+ (\d+)\]", done)
        if m is None:
            raise ProtocolError(f"IMAP APPEND: no APPENDUID in {done!r}")
        return int(m.group(1))

    async def idle(self, seconds: float) -> list[bytes]:
        """IDLE for a while (RFC 2177), collecting what the server pushes, then DONE."""
        tag = self._tag()
        await self.send(tag + b" IDLE\r\n")
        pushed = []
        while True:
            item = await self.item()
            if item.startswith(b"+"):
                break
            pushed.append(item)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                pushed.append(await asyncio.wait_for(self.item(), left))
            except TimeoutError:
                break
        await self.send(b"DONE\r\n")
        _, more = await self.tagged(tag, b"IDLE")
        return pushed + more

    async def logout(self) -> None:
        await self.command(b"LOGOUT")
        await self.close()


class Pop3(_Stream):
    @classmethod
    async def connect(cls, port: int, user: str, password: str) -> Pop3:
        conn = cls(*await asyncio.open_connection("127.0.0.1", port))
        try:
            await conn.ok(b"greeting")
            await conn.command(f"USER {user}".encode())
            await conn.command(f"PASS {password}".encode())
        except BaseException:
            await conn.close()
            raise
        return conn

    async def ok(self, what: bytes) -> bytes:
        line = await self.line()
        if not line.startswith(b"+OK"):
            raise ProtocolError(f"POP3 {what[:80]!r}: {line[:300]!r}")
        return line

    async def command(self, cmd: bytes) -> bytes:
        await self.send(cmd + b"\r\n")
        return await self.ok(cmd.split()[0] if cmd.split()[0] != b"PASS" else b"PASS")

    async def multi(self, cmd: bytes) -> bytes:
        """A multi-line response, dot-unstuffed (RFC 1939 §3)."""
        await self.command(cmd)
        lines: list[bytes] = []
        while True:
            line = await self.line()
            if line == b".\r\n":
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)


def literal(item: bytes) -> bytes | None:
    """The first literal's bytes in a response item (e.g. a FETCH BODY[] value)."""
    m = re.search(rb"\{(\d+)\}\r\n", item)
    return item[m.end() : m.end() + int(m.group(1))] if m else None
