"""Started as root: bind the privileged ports, hand the data directory over, drop to a user.

``courriel serve`` started as root with ``[server] user`` set calls :func:`prebind` for every
listener port below 1024 *before* it opens the store, then :func:`drop` (which chowns the
data directory to the user when its owner differs, then setgroups([]), setgid, setuid and
checks that root cannot be regained). The services then :func:`take` the pre-bound sockets
for their (host, port) instead of binding (which would now fail).
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
from pathlib import Path

from courriel.config import Config, parse_listen
from courriel.proxy import bind

log = logging.getLogger("courriel")

#: (host, port) -> listening sockets bound while still root.
_prebound: dict[tuple[str, int], list[socket.socket]] = {}


class PrivilegeError(OSError):
    """The user could not be dropped to: serve must not go on."""


def prebind(cfg: Config, below: int = 1024) -> list[tuple[str, int]]:
    """Bind every configured listener address whose port is below ``below``."""
    done = []
    addresses = [a for section in cfg.listeners().values() for a in section.addresses()]
    if cfg.acme.enabled and cfg.acme.http_listen:
        addresses += parse_listen(cfg.acme.http_listen, "acme.http_listen")
    for host, port in addresses:
        if 0 < port < below and (host, port) not in _prebound:
            _prebound[(host, port)] = bind(host, port)
            done.append((host, port))
    return done


def take(host: str, port: int) -> list[socket.socket] | None:
    """The sockets pre-bound for ``host:port`` (once), or None: the caller binds itself."""
    return _prebound.pop((host, port), None)


def release() -> None:
    """Close pre-bound sockets no service took (a listener left out by ``--only``)."""
    for socks in _prebound.values():
        for sock in socks:
            sock.close()
    _prebound.clear()


def resolve(user: str, group: str = "") -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"server.user: no user {user!r}") from None
    gid = pw.pw_gid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise PrivilegeError(f"server.group: no group {group!r}") from None
    return pw.pw_uid, gid


def chown_tree(root: Path, uid: int, gid: int) -> int:
    """Give ``root`` and everything under it (not following links) to uid:gid; returns how
    many entries changed."""
    changed = 0
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [Path(dirpath) / n for n in dirnames + filenames]
    for path in paths:
        st = path.lstat()
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)
            changed += 1
    return changed


def drop(cfg: Config) -> tuple[int, int]:
    """Become ``[server] user``/``group``; the data directory is theirs first."""
    uid, gid = resolve(cfg.server.user, cfg.server.group)
    data = Path(cfg.data_dir)
    st = data.stat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        n = chown_tree(data, uid, gid)
        log.warning("data directory %s given to %s (%d entries changed owner)", data, cfg.server.user, n)
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot drop privileges to {cfg.server.user}: {exc}") from None
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise PrivilegeError("privileges were not dropped: setuid(0) still works")
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid or os.getegid() != gid:
        raise PrivilegeError(f"cannot drop privileges to {cfg.server.user}")
    log.info("running as %s (uid %d, gid %d)", cfg.server.user, uid, gid)
    return uid, gid


def setup(cfg: Config) -> None:
    """What ``serve`` does before opening the store."""
    if os.geteuid() != 0:
        return
    if not cfg.server.user:
        log.warning("running as root: set [server] user to drop privileges after binding the ports")
        return
    bound = prebind(cfg)
    if bound:
        log.info("bound %s before dropping privileges", ", ".join(f"{h}:{p}" for h, p in bound))
    drop(cfg)
