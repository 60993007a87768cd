"""Child process for the durability tests: appends messages forever, acknowledging each one
(to the SQLite store of a directory, or with a DSN argument to a PostgreSQL database).

Each message carries an X-Check header with the SHA-256 of its body, so that any message
in the store can be verified on its own. One line ``ACK <uid> <sha256 of the whole message>``
is printed (and flushed) after each append returns, i.e. after it is durable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path

from courriel.store.api import INBOX, Store
from courriel.store.sqlite.store import SQLiteStore


def make_message(n: int) -> bytes:
    body = (f"message {n} from pid {os.getpid()}\r\n" + "x" * (n % 7000) + "\r\n").encode()
    check = hashlib.sha256(body).hexdigest()
    return f"Subject: durability {n}\r\nX-Check: {check}\r\n\r\n".encode() + body


async def main(root: Path, writers: int, dsn: str | None = None) -> None:
    store: Store
    if dsn:
        from courriel.store.postgres.store import PostgresStore

        store = await PostgresStore.open(dsn, listen=False)
    else:
        store = await SQLiteStore.open(root / "courriel.db", root / "blobs")
    user = await store.get_user("u@example.test")
    assert user is not None
    inbox = await store.get_mailbox(user.id, INBOX)
    assert inbox is not None
    out = sys.stdout
    counter = 0

    async def writer() -> None:
        nonlocal counter
        while True:
            counter += 1
            data = make_message(counter)
            a = await store.append(inbox.id, data)
            out.write(f"ACK {a.uid} {hashlib.sha256(data).hexdigest()}\n")
            out.flush()

    await asyncio.gather(*(writer() for _ in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
