"""Login and logout.

The login form carries its own token, also set in a short-lived cookie (double submit), so
a page elsewhere cannot log a browser into an account of its choosing. Passwords are checked
by :func:`courriel.web.auth.login`, the one password check of the http listener (rate limited
per client address with the other protocols' :class:`AuthLimiter`), and only where
:func:`courriel.web.auth.password_allowed` says a password may travel.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from courriel.web.auth import client_ip, login, password_allowed
from courriel.webmail.common import Webmail, safe_next, same_origin
from courriel.webmail.sessions import COOKIE, LOGIN_COOKIE, Session

log = logging.getLogger("courriel.webmail")
MAX_FIELD = 1024


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(wm: Webmail, request: Request, status: int = 200, error: str = "", username: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = wm.render(
        "login.html", status=status, error=error, username=username, login_token=token,
        next=safe_next(request.query_params.get("next")),
        insecure=not password_allowed(wm.ctx, request),
    )  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=_secure(request), path="/login")  # fmt: skip
    return response


async def login_page(wm: Webmail, request: Request) -> Response:
    if request.method == "GET":
        if await wm.sessions.get(request.cookies.get(COOKIE)) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return _form(wm, request)
    form = await request.form()
    username = str(form.get("username") or "")[:MAX_FIELD].strip()
    password = str(form.get("password") or "")[:MAX_FIELD]
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    token = str(form.get("login_token") or "")
    if not same_origin(request) or not cookie or not hmac.compare_digest(cookie.encode(), token.encode()):
        return _form(wm, request, 403, "The login form expired; please try again.", username)
    if not password_allowed(wm.ctx, request):
        return _form(wm, request, 403, "Passwords are accepted over HTTPS only.", username)
    ip = client_ip(request)
    if wm.ctx.auth_limiter.refused(ip):
        log.info("webmail: login refused for %s: too many failures", ip)
        return _form(wm, request, 429, "Too many failed logins from your address; try again later.", username)
    cred = await login(wm.ctx, request, username, password) if username and password else None
    if cred is None:
        if not username or not password:
            wm.ctx.auth_limiter.failure(ip)
        log.info("webmail: failed login for %r from %s", username, ip)
        return _form(wm, request, 401, "Wrong user name or password.", username)
    user = await wm.store.get_user_by_id(cred.user_id)
    if user is None or user.disabled:
        return _form(wm, request, 401, "Wrong user name or password.", username)
    _, session_token = await wm.sessions.create(user.id, user.address, ip, request.headers.get("user-agent", ""))
    log.info("webmail: login %s from %s", user.address, ip)
    response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
    # No max-age: the cookie ends with the browser session or the server's session.
    response.set_cookie(COOKIE, session_token, httponly=True, samesite="strict", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout(wm: Webmail, request: Request, session: Session) -> Response:
    await wm.sessions.drop(session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def root(wm: Webmail, request: Request) -> Response:
    if await wm.sessions.get(request.cookies.get(COOKIE)) is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/mail/", status_code=303)
