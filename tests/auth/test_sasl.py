"""SASL mechanisms against a real store: PLAIN, LOGIN, SCRAM-SHA-256 (with RFC 7677's vector)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from courriel.auth import passwords
from courriel.auth.limits import AuthLimiter
from courriel.auth.sasl import (
    Challenge,
    Failure,
    SaslError,
    Success,
    decode_response,
    new_mechanism,
)
from tests.conftest import StoreRunner


@pytest.fixture
def r(runner: StoreRunner) -> StoreRunner:
    runner.run(runner.store.add_domain("example.test"))
    runner.run(runner.store.add_user("alice@example.test", "pencil"))
    return runner


def test_plain(r: StoreRunner) -> None:
    def attempt(msg: bytes) -> object:
        mech = new_mechanism("plain", r.store)
        assert mech is not None
        return r.run(mech.step(msg))

    ok = attempt(b"\0alice@example.test\0pencil")
    assert isinstance(ok, Success) and ok.credentials.address == "alice@example.test"
    assert isinstance(attempt(b"alice@example.test\0alice@example.test\0pencil"), Success)
    assert isinstance(attempt(b"\0alice@example.test\0wrong"), Failure)
    assert isinstance(attempt(b"\0nobody@example.test\0pencil"), Failure)
    bad = attempt(b"no-nul-here")
    assert isinstance(bad, Failure) and bad.malformed
    other = attempt(b"bob@example.test\0alice@example.test\0pencil")
    assert isinstance(other, Failure) and not other.malformed


def test_login(r: StoreRunner) -> None:
    mech = new_mechanism("LOGIN", r.store)
    assert mech is not None
    assert r.run(mech.step(None)) == Challenge(b"Username:")
    assert r.run(mech.step(b"alice@example.test")) == Challenge(b"Password:")
    assert isinstance(r.run(mech.step(b"pencil")), Success)


def scram_client(r: StoreRunner, user: str, password: str, tamper: bool = False) -> tuple[object, bytes]:
    mech = new_mechanism("SCRAM-SHA-256", r.store)
    assert mech is not None
    cnonce = b"rOprNGfwEbeRWgbNEkqO"
    first_bare = b"n=" + user.encode() + b",r=" + cnonce
    ch = r.run(mech.step(b"n,," + first_bare))
    assert isinstance(ch, Challenge)
    attrs = dict(item.split(b"=", 1) for item in ch.data.split(b","))
    assert attrs[b"r"].startswith(cnonce)
    salt, iterations = base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = b"c=biws,r=" + attrs[b"r"]
    auth_message = first_bare + b"," + ch.data + b"," + without_proof
    sig = hmac.new(stored, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    if tamper:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    result = r.run(mech.step(without_proof + b",p=" + base64.b64encode(proof)))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return result, b"v=" + base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest())


def test_scram_sha_256(r: StoreRunner) -> None:
    result, expected_final = scram_client(r, "alice@example.test", "pencil")
    assert isinstance(result, Success) and result.final == expected_final
    wrong, _ = scram_client(r, "alice@example.test", "wrong")
    assert isinstance(wrong, Failure) and not wrong.malformed
    tampered, _ = scram_client(r, "alice@example.test", "pencil", tamper=True)
    assert isinstance(tampered, Failure)
    unknown, _ = scram_client(r, "nobody@example.test", "pencil")  # same dance, then refused
    assert isinstance(unknown, Failure)


def test_scram_keys_rfc7677_vector() -> None:
    # RFC 7677 §3: user "user", password "pencil".
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    stored, server = passwords.scram_keys("pencil", salt, 4096)
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    server_sig = hmac.new(server, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_sig) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_sig = hmac.new(stored, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_sig))
    assert hashlib.sha256(client_key).digest() == stored


def test_scram_rejects_channel_binding_and_garbage(r: StoreRunner) -> None:
    for msg in [b"p=tls-unique,,n=a,r=x", b"n,,r=x", b"n,,n=a", b"garbage", b"n,,n=a=ZZ,r=x"]:
        mech = new_mechanism("SCRAM-SHA-256", r.store)
        assert mech is not None
        out = r.run(mech.step(msg))
        assert isinstance(out, Failure) and out.malformed, msg


def test_decode_response() -> None:
    assert decode_response(b"*") is None
    assert decode_response(b"=") == b""
    assert decode_response(base64.b64encode(b"hi")) == b"hi"
    with pytest.raises(SaslError):
        decode_response(b"not base64!")
    with pytest.raises(SaslError):
        decode_response(b"A" * 10000)
    assert new_mechanism("CRAM-MD5", None) is None  # type: ignore[arg-type]


def test_auth_limiter_slows_then_refuses() -> None:
    lim = AuthLimiter(max_failures=3, window=60, lockout=60, max_delay=2)
    ip = "192.0.2.1"
    assert lim.delay(ip) == 0 and not lim.refused(ip)
    lim.failure(ip)
    assert lim.delay(ip) == 1
    lim.failure(ip)
    assert lim.delay(ip) == 2 and not lim.refused(ip)
    lim.failure(ip)
    assert lim.refused(ip)
    assert not lim.refused("192.0.2.2")
    lim.success(ip)
    assert not lim.refused(ip)


def test_auth_limiter_takes_one_check_at_a_time_per_address() -> None:
    """Thirty simultaneous wrong guesses from one address: only max_failures are checked,
    the others are refused when their turn comes; another address is not held up."""
    import asyncio

    lim = AuthLimiter(max_failures=3, window=60, lockout=60)
    checked: list[str] = []

    class Locked(Exception):
        pass

    async def attempt(ip: str, password: str) -> str:
        async def check() -> bool:
            checked.append(ip)
            await asyncio.sleep(0.01)  # the password hash takes time
            return password == "right"

        try:
            ok = await lim.checked(ip, check, Locked)
        except Locked:
            return "refused"
        if ok:
            lim.success(ip)
            return "ok"
        lim.failure(ip)  # recorded before any await: the next in turn sees it
        return "failed"

    async def main() -> list[str]:
        burst = [attempt("192.0.2.7", f"guess{i}") for i in range(30)]
        return await asyncio.gather(*burst, attempt("192.0.2.8", "right"))

    results = asyncio.run(main())
    assert results[:30].count("failed") == 3 and results[:30].count("refused") == 27
    assert results[30] == "ok"
    assert checked.count("192.0.2.7") == 3
    assert not lim._turns  # no lock left behind


def test_simultaneous_correct_logins_all_pass() -> None:
    import asyncio

    lim = AuthLimiter(max_failures=3, window=60, lockout=60)

    async def main() -> list[bool]:
        async def check() -> bool:
            await asyncio.sleep(0)
            return True

        return await asyncio.gather(*(lim.checked("192.0.2.9", check, RuntimeError) for _ in range(20)))

    assert asyncio.run(main()) == [True] * 20


def test_verified_cache() -> None:
    cache = passwords.VerifiedCache(ttl=60)
    h = passwords.derive("pencil").password_hash
    assert not cache.hit(h, "pencil")
    cache.add(h, "pencil")
    assert cache.hit(h, "pencil")
    assert not cache.hit(h, "pencil2")  # a wrong password is never a hit
    h2 = passwords.derive("pencil").password_hash  # a new hash (password changed): a miss
    assert not cache.hit(h2, "pencil")
    expired = passwords.VerifiedCache(ttl=-1)
    expired.add(h, "pencil")
    assert not expired.hit(h, "pencil")


def test_password_change_invalidates_cached_login(r: StoreRunner) -> None:
    from courriel.auth.sasl import check_password

    assert r.run(check_password(r.store, "alice@example.test", "pencil")) is not None
    assert r.run(check_password(r.store, "alice@example.test", "pencil")) is not None  # cached
    r.run(r.store.set_password("alice@example.test", "crayon"))
    assert r.run(check_password(r.store, "alice@example.test", "pencil")) is None
    assert r.run(check_password(r.store, "alice@example.test", "crayon")) is not None
