"""The dashboard's routes: pages, login, logout and static files (see the package's docstring)."""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Mapping
from importlib import resources
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally_server.auth import SESSION_COOKIE, session_token
from tally_server.storage.repository import Repository
from tally_server.storage.sessions import SESSION_SECONDS

__all__ = ["SECURITY_HEADERS", "csrf_token", "dashboard_routes"]

STATIC = resources.files("tally_server.dashboard") / "static"
_SHELL = (STATIC / "index.html").read_text("utf-8")
_LOGIN = (STATIC / "login.html").read_text("utf-8")
_FORM_LIMIT = 4096  # a login or logout form is a few hundred bytes

SECURITY_HEADERS = {
    # Scripts, styles and data from this origin only: no inline script, no eval, nothing from elsewhere. uPlot
    # sizes its elements through the CSSOM, which `style-src 'self'` allows (no inline style attributes in markup).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # A login link's token never leaves for another site in a Referer. (Not `no-referrer`: with it, Chromium sends
    # `Origin: null` with the page's own forms, which the same-origin check below must then refuse.)
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_NO_STORE = {"Cache-Control": "no-store"}


def csrf_token(session: str) -> str:
    """The token the page's forms carry: derived from the session's secret, so only a page that was served to the
    session's holder knows it, and nothing more is stored."""
    return hmac.new(session.encode(), b"tally-dashboard-csrf", hashlib.sha256).hexdigest()


def dashboard_routes(repo: Repository) -> list[BaseRoute]:
    """The routes, over the server's repository."""

    async def shell(request: Request) -> Response:
        token = session_token(request.headers.get("cookie"))
        principal = None
        if token is not None:
            principal = await anyio.to_thread.run_sync(repo.sessions.authenticate, token)
        if token is None or principal is None:
            return _redirect("/login")
        page = _SHELL.replace("{{csrf}}", csrf_token(token))
        return _html(200, page)

    async def login_page(request: Request) -> Response:
        link = request.query_params.get("token")
        if link is None:
            return _login_form(200)
        session = await anyio.to_thread.run_sync(repo.sessions.redeem_login_link, link[:512])
        if session is None:
            message = (
                "This login link has expired or was already used: links work once, for a minute. Run `tally ui` "
                "again, or log in with an organisation API key."
            )
            return _login_form(401, message)
        return _start_session(request, session)

    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return _login_form(403, "The login form must be sent from this dashboard's own page.")
        form = await _read_form(request)
        if form is None:
            return _login_form(413, "The login form is too large.")
        key = form.get("api_key", "").strip()
        if not key:
            return _login_form(400, "api_key: enter an organisation API key (it starts with tk_org_).")
        principal = await anyio.to_thread.run_sync(repo.authenticate, key) if len(key) <= 512 else None
        if principal is None:
            return _login_form(401, "api_key: unknown, revoked or expired API key.")
        if principal.kind != "org":
            message = "api_key: an ingestion key cannot open the dashboard; use an organisation API key (tk_org_...)."
            return _login_form(403, message)
        session = await anyio.to_thread.run_sync(repo.sessions.open_session, principal)
        if session is None:
            return _login_form(401, "api_key: unknown, revoked or expired API key.")
        return _start_session(request, session)

    async def logout(request: Request) -> Response:
        token = session_token(request.headers.get("cookie"))
        form = await _read_form(request)
        sent = (form or {}).get("csrf", "")
        if token is None or not _same_origin(request) or not hmac.compare_digest(sent, csrf_token(token)):
            return _login_form(403, "Log out from the dashboard's own page (its form carries a CSRF token).")
        await anyio.to_thread.run_sync(repo.sessions.end, token)
        response = _redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    static = StaticFiles(directory=str(STATIC))
    return [
        Route("/", shell, methods=["GET"]),
        Route("/runs/{experiment_id}", shell, methods=["GET"]),
        Route("/compare", shell, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", app=_WithHeaders(static, {"Cache-Control": "no-cache"})),
    ]


def _html(status: int, page: str) -> HTMLResponse:
    return HTMLResponse(page, status_code=status, headers={**SECURITY_HEADERS, **_NO_STORE})


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={**SECURITY_HEADERS, **_NO_STORE})


def _login_form(status: int, message: str = "") -> HTMLResponse:
    """The login page, with a message (escaped) when a login failed."""
    shown = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return _html(status, _LOGIN.replace("{{message}}", shown))


def _start_session(request: Request, session: str) -> Response:
    response = _redirect("/")
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _same_origin(request: Request) -> bool:
    """Whether a form was sent by a page of this origin. Browsers send `Sec-Fetch-Site` and `Origin` with every
    POST; a request with neither comes from no browser, so it cannot be a cross-site forgery."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or (origin == "null" and fetch_site is not None):
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


async def _read_form(request: Request) -> Mapping[str, str] | None:
    """A small url-encoded form's fields (first value of each); None when it is over the limit."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {name: values[0] for name, values in fields.items()}


class _WithHeaders:
    """An ASGI app with the dashboard's security headers (and `extra`) added to its answers."""

    def __init__(self, app: ASGIApp, extra: Mapping[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in {**SECURITY_HEADERS, **extra}.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
