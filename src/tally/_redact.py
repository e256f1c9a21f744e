"""What may be shown of a request that carried a secret: its URL, its headers, free text. Pure, no I/O.

Errors keep the request's method and URL (and a status error its response, whose request holds the headers),
and the retry transport logs each attempt's URL. A key travels in `Authorization`, but a caller may also put one
in a query (`?api_key=`, `access_token=`), in the URL's userinfo, or in a header of their own. What leaves the
process (an error's text, a pickled error, a log line) goes through here first:

- headers: `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie` and any header whose name says it holds
  a secret (`is_secret_name`: a word such as token, secret, password, auth, or an API key, but not
  `Idempotency-Key` or `metadata_key`) keep only their scheme and the key's kind and last four characters
  (`Bearer tk_org_...abcd`, the server's own `token_hint`); any Tally key elsewhere in a value is masked too;
- URLs: the userinfo is dropped, query values under such names are masked, and so is a Tally key anywhere;
- text: every Tally key (`tk_org_...`, `tk_ing_...`) is masked, and so is every dashboard login-link token
  (`tl_...`, in `createLoginLink`'s `path`) and session token (`ts_...`, the `tally_session` cookie);
- bodies (the debug log, `tally._debug_log`): the text rules, and the value of every JSON member whose name says it
  holds a secret (`"token": "..."`, `"password": "..."`);
- a client's or config's repr, and the CLI, show the key it uses with `redact` (`tk_org_…abcd`).

Masks are ASCII (`...`), so that a masked header is still a valid header; `redact` is for people, not headers.
"""

from __future__ import annotations

import re

import httpx

__all__ = ["is_secret_name", "mask", "redact", "redact_body", "redact_headers", "redact_text", "redact_url"]

# The patterns are compiled on first use (by `re`'s own cache), not at import: `from tally import Tally` imports this
# module and a program that never shows a secret-bearing text should not pay for them (issue 21's import target).
_MASKED_SHAPES = r"tk_(?:org|ing)_[A-Za-z0-9_\-]+|\bt[ls]_[A-Za-z0-9_\-]{16,}"
"""Every secret-shaped string: Tally keys, login-link tokens (`tl_`) and session tokens (`ts_`) of the server."""
_TOKEN_MARKS = ("tk_", "tl_", "ts_")
_JSON_MEMBER = r'"((?:[^"\\]|\\.){1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"'
"""A JSON member whose value is a string: `"name": "value"` (escapes kept)."""
_WORDS = r"[^a-z0-9]+"
_CAMEL = r"([a-z0-9])([A-Z])"
_SECRET_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "cookie",
        "credential",
        "credentials",
        "jwt",
        "passwd",
        "password",
        "pwd",
        "secret",
        "session",
        "sig",
        "signature",
        "token",
    }
)
_KEY_QUALIFIERS = frozenset({"api", "access", "auth", "private", "secret"})
"""`key` is a secret alone or after one of these (`api_key`, `X-Api-Key`), not after others (`metadata_key`)."""


def is_secret_name(name: str) -> bool:
    """Whether a header or query parameter called `name` carries a secret."""
    words = re.split(_WORDS, re.sub(_CAMEL, r"\1_\2", name).lower())
    if not _SECRET_WORDS.isdisjoint(words):
        return True
    if "key" not in words:
        return False
    index = words.index("key")
    return len([word for word in words if word]) == 1 or (index > 0 and words[index - 1] in _KEY_QUALIFIERS)


def mask(secret: str) -> str:
    """A secret as it may be shown: a Tally key's kind and last four characters, anything else `***`."""
    if secret.startswith(("tk_org_", "tk_ing_")) and len(secret) > 11:
        return f"{secret[:7]}...{secret[-4:]}"
    return "***"


def redact(token: str | None) -> str:
    """A token as it may be shown to a person: its kind prefix and last four characters (`tk_org_…abcd`), never
    more."""
    if not token:
        return "<none>"
    prefix = "tk_org_" if token.startswith("tk_org_") else "tk_ing_" if token.startswith("tk_ing_") else ""
    return f"{prefix}…{token[-4:]}" if len(token) > 8 else "…"


def redact_text(text: str) -> str:
    """`text` with every Tally key masked, and every login-link or session token."""
    if any(mark in text for mark in _TOKEN_MARKS):
        return re.sub(_MASKED_SHAPES, lambda found: mask(found.group()), text)
    return text


def _member(found: re.Match[str]) -> str:
    name, colon, value = found.group(1), found.group(2), found.group(3)
    return f'"{name}"{colon}"{mask(value)}"' if value and is_secret_name(name) else found.group()


def redact_body(text: str) -> str:
    """A request or response body (JSON or not) as text that shows no secret: `redact_text`, and the string value of
    every JSON member whose name holds a secret (`is_secret_name`: `token`, `password`, `api_key`, ...)."""
    return redact_text(re.sub(_JSON_MEMBER, _member, text) if '"' in text else text)


def _redact_value(value: str) -> str:
    scheme, space, credential = value.partition(" ")
    if space and credential and " " not in credential.strip():
        return f"{scheme} {mask(credential.strip())}"
    return mask(value)


def redact_headers(headers: httpx.Headers) -> httpx.Headers:
    """A copy of `headers` that shows no secret (order and repeated names kept)."""
    items = [
        (name, _redact_value(value) if is_secret_name(name) else redact_text(value))
        for name, value in headers.multi_items()
    ]
    return httpx.Headers(items)


def redact_url(url: httpx.URL) -> str:
    """`url` as text that shows no secret: no userinfo, masked secret query values, masked keys."""
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    query = url.query
    if query:
        pairs = []
        for pair in query.decode("ascii", "replace").split("&"):
            name, equals, value = pair.partition("=")
            if equals:
                decoded_name, decoded_value = httpx.QueryParams(pair).multi_items()[0]
                if is_secret_name(decoded_name) or re.search(_MASKED_SHAPES, decoded_value):
                    value = mask(decoded_value)
            pairs.append(f"{name}{equals}{value}")
        url = url.copy_with(query="&".join(pairs).encode())
    return redact_text(str(url))
