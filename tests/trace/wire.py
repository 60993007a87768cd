"""Test helpers: a loopback TCP tap that records the wire, and a transcript-vs-wire check."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any


class Tap:
    """Forwards one connection from a local port to ``target``, keeping both directions' bytes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.wire: dict[str, bytearray] = {"c": bytearray(), "s": bytearray()}
        #: The tap's port towards the server: the transcript names it as the client's.
        self.upstream_port = 0
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.target_port))
        try:
            self._relay(client, server)
        finally:
            client.close()
            server.close()
            self.listener.close()

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        self.upstream_port = server.getsockname()[1]
        self.ready.set()
        ends = {client: (server, "c"), server: (client, "s")}
        open_ends = set(ends)
        while open_ends:
            readable, _, _ = select.select(list(open_ends), [], [], 30)
            if not readable:
                break
            for sock in readable:
                other, d = ends[sock]
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:  # a side closed with unread data: the end, as EOF
                    data = b""
                if not data:
                    open_ends.discard(sock)
                    try:
                        other.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                self.wire[d] += data
                try:
                    other.sendall(data)
                except OSError:  # the other side is gone
                    open_ends.discard(other)

    def join(self) -> None:
        self.thread.join(30)


def transcript_of(traces: Path, client_port: int, deadline: float = 30.0) -> list[dict[str, Any]]:
    """The complete transcript of the session whose client port is ``client_port``."""
    marker = f"client 127.0.0.1:{client_port},"
    end = time.monotonic() + deadline
    while True:
        for path in traces.glob("*/*.jsonl"):
            entries = [json.loads(line) for line in path.read_text().splitlines()]
            if entries and marker in entries[0]["text"] and entries[-1]["text"] == "connection closed":
                return entries
        if time.monotonic() > end:
            raise AssertionError(f"no complete transcript for client port {client_port}")
        time.sleep(0.05)


def check_against_wire(entries: list[dict[str, Any]], wire: dict[str, bytearray]) -> None:
    """Each direction's transcript, read in order, reproduces that direction's wire octets:
    plain lines exactly, ``<redacted N octets>`` and ``<body: N octets>`` by skipping N octets."""
    import re

    pos = {"c": 0, "s": 0}
    for e in entries:
        d = e["dir"]
        if d == "event":
            continue
        data, p, text = bytes(wire[d]), pos[d], e["text"]
        m = re.fullmatch(r"(.*?)<(?:redacted|body:) (\d+) octets>", text, re.S)
        if m:
            prefix = m.group(1).encode()
            assert data[p : p + len(prefix)] == prefix, (text, data[p : p + 80])
            p += len(prefix) + int(m.group(2))
        else:
            raw = text.encode()
            assert data[p : p + len(raw)] == raw, (text, data[p : p + 80])
            p += len(raw)
        if data[p : p + 2] == b"\r\n":
            p += 2
        elif data[p : p + 1] == b"\n":
            p += 1
        pos[d] = p
    for d in ("c", "s"):
        assert pos[d] == len(wire[d]), (d, bytes(wire[d][pos[d] : pos[d] + 200]))
