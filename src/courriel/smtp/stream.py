"""Buffered SMTP input and output over one connection.

Input is read in big blocks (64 KB) into one buffer; command lines, DATA (up to the only
terminator RFC 5321 §4.1.1.4 allows, CRLF.CRLF) and BDAT chunks are cut from it. Before
every read that may block, the pending replies are flushed: with PIPELINING (RFC 2920 §3.2)
the replies to a group of commands leave in one write, and a client waiting for a reply
always gets it. At STARTTLS the buffered plaintext is discarded (RFC 3207 §4.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from courriel.smtp.protocol import Reply

READ_SIZE = 65536
END_OF_DATA = b"\r\n.\r\n"
#: Output buffered in the transport beyond which the session waits for the client.
HIGH_WATER = 256 * 1024


class TimedOut(Exception):
    """No input within the allowed time."""


class Closed(Exception):
    """The client closed the connection."""


class Interrupted(Exception):
    """The server asked the session to stop while it waited for input (shutdown)."""


class Output:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: list[bytes] = []
        #: Seconds a client may leave our replies unread (pipelining without reading).
        self.timeout: float = 300.0
        self._stalled = False

    def reply(self, reply: Reply) -> None:
        self.pending.append(reply.encode())

    def raw(self, data: bytes) -> None:
        self.pending.append(data)

    async def flush(self) -> None:
        if not self.pending:
            return
        data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending.clear()
        self.writer.write(data)
        # Wait only when the client does not keep up (flow control); a drain per reply
        # costs a coroutine round trip on the hot path.
        if self.writer.transport.get_write_buffer_size() > HIGH_WATER:
            # A client that pipelines commands and never reads the replies: give up after
            # ``timeout`` instead of holding the connection for ever.
            if self._stalled:
                raise TimedOut
            try:
                await asyncio.wait_for(self.writer.drain(), self.timeout)
            except TimeoutError:
                self._stalled = True
                raise TimedOut from None


class Input:
    def __init__(self, reader: asyncio.StreamReader, before_wait: Callable[[], Awaitable[None]]) -> None:
        self.reader = reader
        self.buf = bytearray()
        self.before_wait = before_wait
        #: Seconds to wait for each read (command or data timeout).
        self.timeout: float = 300.0
        # One lazily re-armed timer per connection instead of a timeout context per read.
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task[object] | None = None
        self._timed_out = False
        self._interrupted = False

    def _expire(self) -> None:
        self._timer = None
        task = self._waiting
        if task is None:
            return  # busy (delivering): the next read re-arms the timer
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._expire)
            return
        self._timed_out = True
        task.cancel()

    def interrupt(self) -> None:
        """Make a pending read raise :class:`Interrupted` (from outside the session task)."""
        if self._waiting is not None:
            self._interrupted = True
            self._waiting.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _fill(self, deadline: float | None = None) -> None:
        """Read more input; give up at ``deadline`` (loop time), by default ``timeout`` from now."""
        await self.before_wait()
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.timeout if deadline is None else deadline
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._expire)
        self._waiting = asyncio.current_task()
        try:
            chunk = await self.reader.read(READ_SIZE)
        except asyncio.CancelledError:
            if not (self._timed_out or self._interrupted):
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self._interrupted:
                raise Interrupted from None
            raise TimedOut from None
        finally:
            self._waiting = None
        if not chunk:
            raise Closed
        self.buf += chunk

    def discard(self) -> int:
        """Drop what the client sent ahead (STARTTLS); returns how many bytes."""
        n = len(self.buf)
        self.buf.clear()
        return n

    async def line(self, limit: int) -> bytes | None:
        """The next line without its line ending (CRLF, or a lone LF), or None when it is
        longer than ``limit`` octets (the line is consumed and dropped).

        The whole line must arrive within ``timeout`` (RFC 5321 §4.5.3.2.7 times the wait for
        the next command): a client dribbling a byte now and then (slowloris) does not
        extend it."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        scanned = 0
        while True:
            nl = self.buf.find(b"\n", scanned)
            if nl >= 0:
                end = nl - 1 if nl > 0 and self.buf[nl - 1] == 0x0D else nl
                line = bytes(self.buf[:end])
                del self.buf[: nl + 1]
                return line if nl + 1 <= limit else None
            if len(self.buf) > limit:
                # Too long: drop what we have and everything up to the next line feed.
                self.buf.clear()
                while True:
                    await self._fill(deadline)
                    nl = self.buf.find(b"\n")
                    if nl >= 0:
                        del self.buf[: nl + 1]
                        return None
                    self.buf.clear()
            scanned = len(self.buf)
            await self._fill(deadline)

    async def data(self, max_size: int) -> tuple[bytes, int]:
        """DATA content up to CRLF.CRLF, still dot-stuffed, with its final CRLF.

        Returns (content, total size seen). Past ``max_size`` the content is dropped while
        the terminator is still looked for; the content returned is then empty.
        """
        buf = self.buf
        pos = 0
        dropped = 0
        while True:
            if dropped == 0 and buf[:3] == b".\r\n":
                del buf[:3]
                return b"", 0
            i = buf.find(END_OF_DATA, pos)
            if i >= 0:
                size = dropped + i + 2
                content = bytes(buf[: i + 2]) if not dropped else b""
                del buf[: i + 5]
                return content, size
            if len(buf) > max_size + 5:
                # Over the limit: keep only what may hold the start of the terminator.
                keep = 4
                dropped += len(buf) - keep
                del buf[:-keep]
            pos = max(0, len(buf) - 4)
            await self._fill()

    async def exact(self, n: int, keep: bool) -> bytes:
        """Exactly ``n`` octets (a BDAT chunk); dropped (returns b"") unless ``keep``."""
        if not keep:
            while n > len(self.buf):
                n -= len(self.buf)
                self.buf.clear()
                await self._fill()
            del self.buf[:n]
            return b""
        while len(self.buf) < n:
            await self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out
