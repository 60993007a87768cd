"""IMAP load mix: N asyncio clients against courriel and Dovecot, in one run.

Each client loops over a fixed mix for a fixed time: LOGIN, SELECT INBOX, FETCH of 20
messages' (FLAGS ENVELOPE), STORE +FLAGS on 5, SEARCH UNSEEN, APPEND one 5 KB message,
STORE \\Deleted on it and EXPUNGE, LOGOUT. Reported: sessions (logins) per second at 10 and
50 clients; ratio = courriel / Dovecot (>1: courriel faster). ``--quick`` runs 2 s with
2 and 5 clients.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.imap import APPENDED, DovecotImap
from bench.pop3 import PASSWORD, PEER_CONF, USER, _fill, messages


async def _cmd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tag: bytes, line: bytes) -> None:
    writer.write(tag + b" " + line + b"\r\n")
    while True:
        got = await reader.readline()
        if not got:
            raise ConnectionError("closed")
        if got.startswith(tag + b" "):
            if not got.startswith(tag + b" OK"):
                raise RuntimeError(got.decode(errors="replace"))
            return
        if got.endswith(b"}\r\n"):  # a literal: skip its octets
            n = int(got[got.rindex(b"{") + 1 : -3].rstrip(b"+"))
            await reader.readexactly(n)


async def _session(port: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()
        await _cmd(reader, writer, b"a", f"LOGIN {USER} {PASSWORD}".encode())
        await _cmd(reader, writer, b"b", b"SELECT INBOX")
        await _cmd(reader, writer, b"c", b"FETCH 1:20 (FLAGS ENVELOPE)")
        await _cmd(reader, writer, b"d", b"STORE 1:5 +FLAGS.SILENT (\\Seen)")
        await _cmd(reader, writer, b"e", b"SEARCH UNSEEN")
        await _cmd(reader, writer, b"f", b"APPEND INBOX {%d+}\r\n" % len(APPENDED) + APPENDED)
        await _cmd(reader, writer, b"g", b"UID STORE %d:* +FLAGS.SILENT (\\Deleted)" % (count + 1))
        await _cmd(reader, writer, b"h", b"EXPUNGE")
        await _cmd(reader, writer, b"i", b"LOGOUT")
    finally:
        writer.close()


async def _load(port: int, clients: int, seconds: float, count: int) -> float:
    done = 0
    errors = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.monotonic() < stop:
            try:
                await _session(port, count)
                done += 1
            except (OSError, RuntimeError, ConnectionError, asyncio.IncompleteReadError):
                errors += 1

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    if errors:
        print(f"imap-load: {errors} failed sessions on port {port}")
    return done / (time.monotonic() - start)


def run(quick: bool = False) -> dict[str, dict[int, float]]:
    from tests.harness import CourrielServer

    count = 200
    levels = (2, 5) if quick else (10, 50)
    seconds = 2.0 if quick else 15.0
    msgs = messages(count)
    results: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        (Path(tmp) / "courriel").mkdir()
        env = {"COURRIEL_IMAP_MAX_CONNECTIONS_PER_USER": "1000", "COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP": "1000"}
        srv = CourrielServer(Path(tmp) / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("imap",),
                             plaintext_auth=True, env=env)  # fmt: skip
        with srv:
            asyncio.run(_fill(srv.data, msgs))
            results["courriel"] = {n: asyncio.run(_load(srv.port("imap"), n, seconds, count)) for n in levels}
        if PEER_CONF.exists() and shutil.which("doveadm") and os.geteuid() == 0:
            peer_root = Path(tmp) / "dovecot"
            peer_root.mkdir()
            peer_root.chmod(0o755)
            Path(tmp).chmod(0o755)
            dovecot = DovecotImap(peer_root)
            try:
                dovecot.start(msgs)
                results["dovecot"] = {n: asyncio.run(_load(dovecot.port, n, seconds, count)) for n in levels}
            finally:
                dovecot.stop()
    print("imap-load: sessions/s (LOGIN SELECT FETCH STORE SEARCH APPEND EXPUNGE LOGOUT)")
    for n in levels:
        row = "".join(f"{results[s][n]:>12.1f}" for s in results)
        ratio = f"{results['courriel'][n] / results['dovecot'][n]:>8.2f}" if "dovecot" in results else ""
        print(f"{n:>4} clients{row}{ratio}")
    return results


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
