"""The HTTP/1.1 server settings that `tally serve` and `start_server()` share: one uvicorn configuration.

uvicorn answers a request it cannot parse (a request line over the parser's limit, bytes that are not HTTP)
itself, in plain text, before the application sees it. `EnvelopedHttpToolsProtocol` answers it in the contract's
error envelope with an `X-Request-Id` instead, so that every answer of the server, even this one, is the same
JSON a client can read.
"""

from __future__ import annotations

import secrets
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tally_server._json import dumps
from tally_server.errors import envelope

__all__ = ["EnvelopedHttpToolsProtocol", "uvicorn_config"]


class EnvelopedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with its plain-text 400 for unparsable requests replaced by the envelope."""

    def send_400_response(self, msg: str) -> None:
        request_id = "req_" + secrets.token_hex(8)
        message = (
            "The request is not valid HTTP/1.1 (a request line or header too long, or malformed); "
            "shorten the URL or send filters in the body where the operation allows."
        )
        data = dumps(envelope("invalid_request", message, request_id, {"reason": msg}))
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"x-request-id: " + request_id.encode() + b"\r\n")
        head.append(b"content-length: " + str(len(data)).encode() + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + data)
        self.transport.close()


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the reference server: httptools with the enveloped 400, no access log."""
    return uvicorn.Config(app, http=EnvelopedHttpToolsProtocol, access_log=False, lifespan="on", **options)
