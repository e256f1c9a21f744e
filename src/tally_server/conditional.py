"""Conditional GETs: the `ETag` of an answer and the `If-None-Match` check that turns it into a 304.

The validator is a hash of the encoded body (BLAKE2b, 128 bits), computed once per GET answer in the pipeline.
A hash is always right: it changes exactly when the bytes do, whatever changed them (a point, a status, an
annotation), so no handler has to prove that a version stamp moves with its data. It costs about a tenth of a
millisecond for a 1,000-point `listMetrics` page (~130 KB; `make bench` piece `cache` prints it), small beside
building and encoding that page. The server still does the read to answer a 304: what a 304 saves is the body on
the wire (and gzip on both sides) and the client's decode.

The ETag is strong and names the identity-encoded JSON: gzip (Starlette's middleware, for clients that ask) is
a transfer detail of the same representation here, and the middleware adds `Vary: Accept-Encoding`, so a shared
cache keeps the two apart.
"""

from __future__ import annotations

import hashlib

__all__ = ["etag_of", "matches"]


def etag_of(body: bytes) -> str:
    """The strong entity tag of an encoded body: `"` + 32 hex digits + `"`."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (RFC 9110 section 13.1.2: `*`, or a list compared weakly, so
    `W/"x"` matches `"x"`). A header that is absent or names other tags does not match."""
    if not if_none_match:
        return False
    value = if_none_match.strip()
    if value == "*":
        return True
    opaque = etag[2:] if etag.startswith("W/") else etag
    for candidate in value.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == opaque:
            return True
    return False
