"""Certificate reload without restart: SIGHUP, and the files changing on disk; the running
implicit-TLS listeners (imaps, submissions) hand the new certificate to new handshakes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from courriel.tls import generate_self_signed
from tests.harness import CourrielServer


def served_cert(port: int) -> x509.Certificate:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def wait_for(cond: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll until ``cond`` holds (the limit only stops a hung test; nothing is timed)."""
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def replace_cert(srv: CourrielServer, hostname: str) -> x509.Certificate:
    """A new pair written next to the live one, then renamed into place (as ACME does)."""
    staging = srv.root / "staging"
    generate_self_signed(staging / "cert.pem", staging / "key.pem", hostname)
    os.replace(staging / "key.pem", srv.data / "tls" / "key.pem")
    os.replace(staging / "cert.pem", srv.data / "tls" / "cert.pem")
    return x509.load_pem_x509_certificate(srv.cert.read_bytes())


def test_sighup_reloads_and_broken_pair_is_refused(tmp_path: Path) -> None:
    env = {"COURRIEL_TLS_RELOAD_INTERVAL": "86400"}  # only SIGHUP reloads in this test
    with CourrielServer(tmp_path, users={}, only=("imaps", "submissions"), env=env) as srv:
        assert srv.proc is not None
        first = served_cert(srv.port("imaps"))
        new = replace_cert(srv, "reloaded.example.test")
        assert served_cert(srv.port("imaps")) == first  # nothing reloads by itself here
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: served_cert(srv.port("imaps")) == new, "imaps serves the new certificate")
        assert served_cert(srv.port("submissions")) == new
        # A broken pair on disk: the reload is refused, logged, the last good one stays.
        saved = srv.cert.read_bytes()
        srv.cert.write_text("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("not reloaded" in line for line in srv.stderr), "the refused reload is logged")
        assert served_cert(srv.port("imaps")) == new
        srv.cert.write_bytes(saved)
        assert srv.proc.poll() is None
    if os.geteuid() == 0:  # started as root without [server] user
        assert any("set [server] user to drop privileges" in line for line in srv.stderr)


def test_changed_files_are_reloaded(tmp_path: Path) -> None:
    env = {"COURRIEL_TLS_RELOAD_INTERVAL": "1"}
    with CourrielServer(tmp_path, users={}, only=("imaps",), env=env) as srv:
        first = served_cert(srv.port("imaps"))
        new = replace_cert(srv, "watched.example.test")
        assert new != first
        wait_for(lambda: served_cert(srv.port("imaps")) == new, "the changed files are picked up")
        assert any("TLS certificate reloaded" in line for line in srv.stderr)
        shutil.rmtree(srv.root / "staging")
