"""Typed errors of command handlers, turned into replies in one place (session.dispatch).

- :class:`No`: the command failed (tagged NO with an optional response code).
- :class:`Bad`: the command was invalid here (tagged BAD).
- :class:`Bye`: the session ends (untagged BYE, connection closed).
"""

from __future__ import annotations


class ImapError(Exception):
    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    def line(self, tag: str, kind: str) -> bytes:
        code = f"[{self.code}] " if self.code else ""
        return f"{tag} {kind} {code}{self.text}\r\n".encode("utf-8", "replace")


class No(ImapError):
    pass


class Bad(ImapError):
    pass


class Bye(ImapError):
    pass
