"""HTTP-01 tokens (RFC 8555 §8.3): in this process's memory and in ``DATA/acme/challenges``.

``courriel cert renew`` runs in its own process while the server's http listener answers
the CA, so a token is also written to disk (world-readable: the answer is public anyway, and
the server may run as another user than the command).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: RFC 8555 §8.3: the token is base64url.
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

_memory: dict[str, str] = {}


def challenge_dir(data_dir: Path) -> Path:
    return data_dir / "acme" / "challenges"


def put(data_dir: Path, token: str, key_authorization: str) -> None:
    if not TOKEN.fullmatch(token):
        raise ValueError(f"ACME token {token!r} is not base64url")
    _memory[token] = key_authorization
    folder = challenge_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    tmp = folder / f".{token}.tmp"
    tmp.write_text(key_authorization)
    tmp.chmod(0o644)
    os.replace(tmp, folder / token)


def remove(data_dir: Path, token: str) -> None:
    _memory.pop(token, None)
    if TOKEN.fullmatch(token):
        (challenge_dir(data_dir) / token).unlink(missing_ok=True)


def get(data_dir: Path, token: str) -> str | None:
    if not TOKEN.fullmatch(token):
        return None
    if token in _memory:
        return _memory[token]
    try:
        return (challenge_dir(data_dir) / token).read_text()[:1024]
    except OSError:
        return None
