"""The dashboard's login, sessions and login links over real HTTP, on both backends (the pages themselves are
tested in a browser: tests/dashboard).

A session is an organisation key's: it reads through the contract's GET operations only, ends at logout or when
the key is revoked, and cannot be opened with an ingestion key. A login link works once, within a minute, and
holds no API key. Forms are refused from other origins, and logout needs the page's CSRF token."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import update

from tally import AsyncTally, Tally
from tally_server import RunningServer
from tally_server.dashboard.pages import csrf_token
from tally_server.storage.schema import api_keys, login_links

from .fresh_org import FreshOrg

pytestmark = pytest.mark.integration


@pytest.fixture
def org(live_server: RunningServer) -> Iterator[FreshOrg]:
    fresh = FreshOrg(live_server)
    yield fresh
    fresh.close()


@pytest.fixture
def browser(live_server: RunningServer) -> Iterator[httpx.Client]:
    """A cookie-keeping client without credentials, posting forms as a page of the dashboard does."""
    with httpx.Client(base_url=live_server.url, headers={"Origin": live_server.url}, timeout=30) as c:
        yield c


def _log_in(browser: httpx.Client, key: str) -> httpx.Response:
    return browser.post("/login", data={"api_key": key})


def test_login_sets_a_strict_httponly_session_cookie_that_reads_the_keys_organisation(
    org: FreshOrg, browser: httpx.Client
) -> None:
    experiment, _ = org.experiment()
    response = _log_in(browser, org.key)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("tally_session=ts_")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert org.key not in cookie
    status = browser.get("/v1/auth/status").json()
    assert status["organization_id"] == org.sdk.auth.status().organization_id
    assert status["key_kind"] == "org"
    listed = browser.get("/v1/experiments").json()["data"]
    assert [e["id"] for e in listed] == [experiment]
    assert browser.get("/").status_code == 200


def test_a_session_reads_only_writes_need_an_api_key(org: FreshOrg, browser: httpx.Client) -> None:
    _log_in(browser, org.key)
    response = browser.post("/v1/experiments", json={"name": "from-a-page"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert browser.post("/v1/auth/login-links").status_code == 401
    assert org.http.get("/v1/experiments").json()["data"] == []


def test_an_ingestion_key_cannot_open_the_dashboard(org: FreshOrg, browser: httpx.Client) -> None:
    experiment, _ = org.experiment()
    token = org.http.post(f"/v1/experiments/{experiment}/ingestion-keys", json={}).json()["token"]
    response = _log_in(browser, token)
    assert response.status_code == 403
    assert "ingestion key cannot open the dashboard" in response.text
    assert "set-cookie" not in response.headers
    assert org.client(token).post("/v1/auth/login-links").status_code == 403


def test_unknown_and_empty_keys_are_refused_with_the_field_named(browser: httpx.Client) -> None:
    unknown = _log_in(browser, "tk_org_" + "x" * 30)
    assert unknown.status_code == 401
    assert "api_key: unknown" in unknown.text
    empty = _log_in(browser, "")
    assert empty.status_code == 400
    assert "api_key: enter an organisation API key" in empty.text
    assert browser.get("/v1/experiments").status_code == 401
    assert browser.get("/", follow_redirects=False).headers["location"] == "/login"


def test_revoking_the_key_ends_its_sessions_at_once(
    live_server: RunningServer, org: FreshOrg, browser: httpx.Client
) -> None:
    _log_in(browser, org.key)
    assert browser.get("/v1/experiments").status_code == 200
    key_id = org.sdk.auth.status().key_id
    # No operation revokes an organisation key yet: revoke it in the database, as an operator would.
    with live_server.repository.db.write() as conn:
        conn.execute(
            update(api_keys).values(revoked_at="2026-01-01T00:00:00Z").where(api_keys.c.id == key_id)
        )
    response = browser.get("/v1/experiments")
    assert response.status_code == 401
    assert "session has ended" in response.json()["error"]["message"]
    assert browser.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_the_pages_csrf_token_and_ends_the_session(org: FreshOrg, browser: httpx.Client) -> None:
    _log_in(browser, org.key)
    session = browser.cookies["tally_session"]
    page = browser.get("/").text
    shown = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert shown is not None
    assert shown.group(1) == csrf_token(session)
    forged = browser.post("/logout", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    assert browser.get("/v1/experiments").status_code == 200
    done = browser.post("/logout", data={"csrf": shown.group(1)})
    assert done.status_code == 303
    assert done.headers["location"] == "/login"
    browser.cookies.set("tally_session", session)  # a copy kept by an attacker stops working too
    assert browser.get("/v1/experiments").status_code == 401


def test_forms_from_another_origin_are_refused(live_server: RunningServer, org: FreshOrg) -> None:
    with httpx.Client(base_url=live_server.url, headers={"Origin": "https://evil.example"}) as other:
        response = other.post("/login", data={"api_key": org.key})
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
    with httpx.Client(base_url=live_server.url, headers={"Sec-Fetch-Site": "cross-site"}) as other:
        assert other.post("/login", data={"api_key": org.key}).status_code == 403


def test_a_login_link_works_once_and_holds_no_api_key(live_server: RunningServer, org: FreshOrg) -> None:
    link = org.sdk.auth.login_link()
    assert org.key not in link.path
    assert link.path.startswith("/login?token=tl_")
    assert "tl_" not in repr(link)
    assert "token=…" in repr(link)
    with httpx.Client(base_url=live_server.url) as first, httpx.Client(base_url=live_server.url) as second:
        opened = first.get(link.path)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/"
        assert first.get("/v1/auth/status").json()["key_kind"] == "org"
        again = second.get(link.path)
        assert again.status_code == 401
        assert "expired or was already used" in again.text
        assert "tally_session" not in second.cookies


def test_a_login_link_opened_at_once_by_many_wins_once(live_server: RunningServer, org: FreshOrg) -> None:
    link = org.sdk.auth.login_link()

    def open_it(_: int) -> int:
        with httpx.Client(base_url=live_server.url) as c:
            return c.get(link.path).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(open_it, range(8)))
    assert statuses == [303] + [401] * 7


def test_an_expired_login_link_is_refused(live_server: RunningServer, org: FreshOrg) -> None:
    link = org.sdk.auth.login_link()
    with live_server.repository.db.write() as conn:
        conn.execute(update(login_links).values(expires_us=1))
    with httpx.Client(base_url=live_server.url) as c:
        response = c.get(link.path)
        assert response.status_code == 401
        assert "tally_session" not in c.cookies


def test_tokens_are_stored_as_hashes_only(live_server: RunningServer, org: FreshOrg) -> None:
    link = org.sdk.auth.login_link()
    token = link.path.split("token=", 1)[1]
    with httpx.Client(base_url=live_server.url) as c:
        c.get(link.path)
        session = c.cookies["tally_session"]
    with live_server.repository.db.read() as conn:
        stored = [
            str(row)
            for table in ("login_links", "dashboard_sessions")
            for row in conn.exec_driver_sql(f"SELECT * FROM {table}").all()  # noqa: S608 - constant table names
        ]
    assert stored
    assert not any(token in row or session in row for row in stored)


def test_pages_carry_a_content_security_policy_without_inline_script(
    live_server: RunningServer, org: FreshOrg, browser: httpx.Client
) -> None:
    _log_in(browser, org.key)
    for path in ("/", "/login", "/compare?ids=x", "/static/dashboard.js"):
        response = browser.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    for page in (browser.get("/").text, browser.get("/login").text):
        scripts = re.findall(r"<script[^>]*>", page)
        assert all(re.search(r'\ssrc="/static/[^"]+"', tag) for tag in scripts)  # no inline script
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page)  # no inline event handlers
        assert "style=" not in page
    licence = browser.get("/static/LICENSE.uPlot.txt")
    assert licence.status_code == 200
    assert "MIT" in licence.text


def test_the_sdk_creates_login_links_on_both_clients(live_server: RunningServer, org: FreshOrg) -> None:
    async def from_async() -> str:
        async with AsyncTally(org.key, base_url=live_server.url) as client:
            return (await client.auth.login_link()).url(live_server.url)

    with Tally(org.key, base_url=live_server.url) as client:
        links = [client.auth.login_link().url(live_server.url), asyncio.run(from_async())]
    for link in links:
        assert link.startswith(live_server.url + "/login?token=tl_")
        with httpx.Client() as c:
            assert c.get(link).status_code == 303
