"""The one ASGI middleware: a request id on every request and answer, one log line per request (and at DEBUG the
client's telemetry figures, `_client_telemetry`), and a last-resort enveloped 500 for anything that escaped the
routes."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tally_server._access_log import request_target
from tally_server._client_telemetry import HEADER as TELEMETRY_HEADER
from tally_server._client_telemetry import read_client_telemetry
from tally_server._json import error_body
from tally_server._spec import Operation
from tally_server.errors import ApiError

__all__ = ["JSON", "OPERATION_SCOPE_KEY", "RequestIdMiddleware", "request_id"]

logger = logging.getLogger("tally_server")

JSON = "application/json"
REQUEST_ID_SCOPE_KEY = "tally.request_id"
OPERATION_SCOPE_KEY = "tally.operation"  # set by the routes: the log line shows only its query parameters
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(scope: Scope) -> str:
    """The id this request answers under (set by the middleware; a fresh one outside it)."""
    return str(scope.get(REQUEST_ID_SCOPE_KEY) or "req_" + secrets.token_hex(8))


class RequestIdMiddleware:
    """Gives every request an id (the client's `X-Request-Id` when sane), puts it on every response, logs one
    line per request (method, path and the operation's declared query parameters, escaped and redacted; status,
    time, request id; never a header such as Authorization), and turns anything that escaped into an enveloped
    500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        telemetry = None
        debug = logger.isEnabledFor(logging.DEBUG)
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                if not debug:
                    break
            elif debug and name == TELEMETRY_HEADER:
                telemetry = value
        rid = offered if offered and _SANE_REQUEST_ID.fullmatch(offered) else "req_" + secrets.token_hex(8)
        scope[REQUEST_ID_SCOPE_KEY] = rid
        if telemetry is not None:
            figures = read_client_telemetry(telemetry)
            if figures is not None:
                logger.debug("client telemetry (%s): %s took %d ms as the client measured it", rid, *figures)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-Id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception("unhandled error (%s)", rid)
            if status == 0:
                body = error_body(ApiError(500, "internal", "Internal server error."), rid)
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", JSON.encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            if logger.isEnabledFor(logging.INFO):
                elapsed = (time.perf_counter() - started) * 1000
                logger.info("%s %s %.1fms %s", _logged_request(scope), status, elapsed, rid)


def _logged_request(scope: Scope) -> str:
    """The request as its log line shows it: escaped, without secrets, with only the matched operation's query
    parameters (see `_access_log`)."""
    operation: Operation | None = scope.get(OPERATION_SCOPE_KEY)
    declared = None if operation is None else {p.name for p in operation.parameters if p.location == "query"}
    query = scope.get("query_string", b"").decode("latin-1")
    return request_target(str(scope.get("method", "")), str(scope.get("path", "")), query, declared)
