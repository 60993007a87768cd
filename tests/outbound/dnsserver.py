"""A small authoritative DNS server for the tests (dnspython), on 127.0.0.1 over UDP and TCP.

    with DnsServer() as dns:
        dns.add("remote.test", "MX", "10 mx.remote.test.")
        dns.add("mx.remote.test", "A", "127.0.0.1")
        ... outbound.dns = dns.address

Unknown names get NXDOMAIN; a known name without records of the asked type an empty answer.
"""

from __future__ import annotations

import socketserver
import struct
import threading
from types import TracebackType

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        owner = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = owner.answer(data)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                data = b""
                while len(data) < size:
                    chunk = self.request.recv(size - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = owner.answer(data, limit=65535)
                if reply is not None:
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        for attempt in range(50):  # UDP and TCP on one port: the TCP one may be taken already
            self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Udp)
            port = self.udp.server_address[1]
            try:
                self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
                break
            except OSError:
                self.udp.server_close()
                if attempt == 49:
                    raise
        self.port = port
        self.address = f"127.0.0.1:{port}"

    def add(self, name: str, rdtype: str, value: str) -> None:
        with self.lock:
            self.records.setdefault((name.lower().rstrip("."), rdtype.upper()), []).append(value)

    def txt(self, name: str, text: str) -> None:
        """A TXT record; long texts are split in 255-byte strings (RFC 7208 §3.3)."""
        parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
        self.add(name, "TXT", " ".join('"' + p.replace('"', '\\"') + '"' for p in parts))

    def answer(self, data: bytes, limit: int = 512) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for q in query.question:
            name = q.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(q.rdtype)
            with self.lock:
                self.queries.append((name, rdtype))
                values = list(self.records.get((name, rdtype), []))
                known = any(n == name for n, _ in self.records)
            if not known:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            if values:
                response.answer.append(dns.rrset.from_text_list(q.name, 60, dns.rdataclass.IN, q.rdtype, values))
        if query.edns >= 0:
            limit = max(limit, query.payload)
        return response.to_wire(max_size=limit)

    def __enter__(self) -> DnsServer:
        for server in (self.udp, self.tcp):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()


