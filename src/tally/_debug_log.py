"""What the `tally` logger shows at DEBUG: each attempt's request and response, headers and bodies, no secret.

At INFO the retry transport logs one line per attempt (`tally._async._transport`). At DEBUG it adds, per attempt,
the request as sent (method, URL, headers, body) and the response as read (status, headers, body), so that a
user can see exactly what crossed the wire (Speakeasy's debug logger). Pure formatting, no I/O.

Secrets never appear (`tally._redact`): `Authorization`, `Cookie`, `Set-Cookie` and every header named like a
secret keep at most a Tally key's kind and last four characters; URLs lose userinfo and secret query values;
bodies lose the value of every JSON member named like a secret (`"token"` of a created ingestion key) and every
secret-shaped string (`tk_org_...`, `tk_ing_...`, the `tl_...` token of a login link's `path`, `ts_...` session
tokens). Each body is cut to `BODY_LIMIT` characters after redaction, with its full size in bytes noted, so a
5 MiB ingest makes a readable log line, not a 5 MiB one.
"""

from __future__ import annotations

import httpx

from tally._redact import redact_body, redact_headers, redact_url

__all__ = ["BODY_LIMIT", "describe_request", "describe_response"]

BODY_LIMIT = 4096
"""Characters of a body shown at DEBUG (after redaction); the rest is replaced by a note of the full size."""
_WINDOW = BODY_LIMIT + 1024
"""Characters redacted: the shown part and a margin longer than any secret, so no cut secret escapes its mask."""


def _headers(headers: httpx.Headers) -> str:
    return "".join(f"\n  {name}: {value}" for name, value in redact_headers(headers).multi_items())


def _body(content: bytes | None) -> str:
    if content is None:
        return "\n  body: (streamed, not shown)"
    if not content:
        return "\n  body: (empty)"
    size = len(content)
    window = content[:_WINDOW]
    try:
        text = window.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(window) - 3:  # not merely a character cut in two by the window's end
            return f"\n  body: ({size} bytes, not UTF-8 text)"
        text = window[: exc.start].decode("utf-8")
    shown = redact_body(text)
    if len(shown) > BODY_LIMIT or size > _WINDOW:
        shown = f"{shown[:BODY_LIMIT]}... ({size} bytes in all, first {BODY_LIMIT} characters shown)"
    return f"\n  body ({size} bytes): {shown}"


def _request_content(request: httpx.Request) -> bytes | None:
    try:
        return request.content
    except httpx.RequestNotRead:
        return None


def _response_content(response: httpx.Response) -> bytes | None:
    try:
        return response.content
    except httpx.ResponseNotRead:
        return None


def describe_request(request: httpx.Request, attempt: int) -> str:
    """The request as this attempt sends it."""
    return (
        f"request {request.method} {redact_url(request.url)} attempt={attempt}"
        f"{_headers(request.headers)}{_body(_request_content(request))}"
    )


def describe_response(request: httpx.Request, response: httpx.Response, attempt: int) -> str:
    """The response to `request` as this attempt read it (a transport's response has no `.request` yet)."""
    return (
        f"response {response.status_code} to {request.method} {redact_url(request.url)} attempt={attempt}"
        f"{_headers(response.headers)}{_body(_response_content(response))}"
    )
