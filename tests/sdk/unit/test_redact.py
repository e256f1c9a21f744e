"""What may be shown of a request that carried a secret (`tally._redact`): pure, no HTTP."""

from __future__ import annotations

import httpx

from tally._redact import is_secret_name, mask, redact_body, redact_headers, redact_text, redact_url

KEY = "tk_org_" + "A" * 28 + "wxyz"


def test_a_key_keeps_its_kind_and_last_four_characters_and_anything_else_is_hidden() -> None:
    assert mask(KEY) == "tk_org_...wxyz"
    assert mask("hunter2hunter2") == "***"
    assert mask("tk_ing_ab") == "***"  # too short to show a hint of
    assert (
        redact_text(f"echo {KEY} and {KEY.replace('org', 'ing')}.")
        == "echo tk_org_...wxyz and tk_ing_...wxyz."
    )


def test_names_that_hold_secrets_are_told_from_the_apis_own() -> None:
    secret = [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "api_key",
        "apiKey",
        "key",
        "access_token",
        "accessToken",
        "X-Auth-Token",
        "password",
        "client_secret",
        "sig",
    ]
    plain = [
        "Idempotency-Key",
        "metadata_key",
        "metadata_value",
        "cursor",
        "name",
        "X-Request-Id",
        "Accept",
        "page_size",
        "X-Tally-Retry-Count",
        "tokens_total",
    ]
    assert [name for name in secret if not is_secret_name(name)] == []
    assert [name for name in plain if is_secret_name(name)] == []


def test_a_url_loses_its_userinfo_secret_query_values_and_keys_anywhere() -> None:
    url = httpx.URL(f"http://me:pw@host:8080/v1/x/{KEY}?api_key={KEY}&page_size=5&Access-Token=abc%20d&flag")
    assert redact_url(url) == (
        "http://host:8080/v1/x/tk_org_...wxyz?api_key=tk_org_...wxyz&page_size=5&Access-Token=***&flag"
    )
    plain = httpx.URL("http://host/v1/experiments?status=running&cursor=abc&metadata_key=lr")
    assert redact_url(plain) == str(plain)


def test_headers_keep_their_scheme_and_order_but_no_secret() -> None:
    headers = httpx.Headers(
        [
            ("Authorization", f"Bearer {KEY}"),
            ("X-Api-Key", "s3cr3t-value"),
            ("Cookie", "session=abc"),
            ("X-Note", f"sent with {KEY}"),
            ("Accept", "application/json"),
            ("Idempotency-Key", "tally-1234"),
        ]
    )
    assert redact_headers(headers).multi_items() == [
        ("authorization", "Bearer tk_org_...wxyz"),
        ("x-api-key", "***"),
        ("cookie", "***"),
        ("x-note", "sent with tk_org_...wxyz"),
        ("accept", "application/json"),
        ("idempotency-key", "tally-1234"),
    ]


def test_login_link_and_session_tokens_and_secret_json_members_are_masked() -> None:
    login, session = "tl_" + "L" * 43, "ts_" + "S" * 43
    assert redact_text(f"GET /login?token={login} cookie tally_session={session}") == (
        "GET /login?token=*** cookie tally_session=***"
    )
    assert redact_text("hosts_file, tl_short and ts_ stay") == "hosts_file, tl_short and ts_ stay"
    body = f'{{"token": "plain-secret", "name": "ci", "path": "/login?token={login}", "password":"pw"}}'
    assert redact_body(body) == '{"token": "***", "name": "ci", "path": "/login?token=***", "password":"***"}'
    assert redact_body(f'{{"token":"{KEY}"}}') == '{"token":"tk_org_...wxyz"}'
    assert redact_body("not json, but " + KEY) == "not json, but tk_org_...wxyz"
