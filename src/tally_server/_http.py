"""The HTTP/1.1 server settings that `tally serve` and `start_server()` share: one uvicorn configuration, the
listening socket, and the protocol that guards the edge.

uvicorn answers a request it cannot parse (a request line over the parser's limit, bytes that are not HTTP)
itself, in plain text, before the application sees it. `EnvelopedHttpToolsProtocol` answers it in the contract's
error envelope with an `X-Request-Id` instead, so that every answer of the server, even this one, is the same
JSON a client can read.

It also adds what uvicorn lacks (uvicorn issue 157: its only timer is the keep-alive one, armed after a response,
so a client that stops midway holds its connection, and its request's task, forever; and httptools reads headers
of any size):
- a head deadline: the request line and headers must arrive within `header_timeout` seconds of the connection
  (or of the first byte of a later request on it); absolute, so trickling a byte at a time does not extend it;
- a body deadline: the body must arrive within `body_timeout` seconds of the request starting to run; for a body
  that declares more than the JSON cap (`MAX_BODY_BYTES`: only an artifact upload may be that large, anything
  else is refused with 413 before it is read) the deadline is an idle one instead, moved on by every chunk that
  arrives, so a 5 GiB upload takes the time it needs while a stalled one is still cut off;
- a size cap on the request line and headers (`max_header_bytes`), counted while they arrive, so a head that
  never ends is cut off at the cap instead of filling memory (414 for the URL, 431 for headers);
- a cap on the requests in flight (`limit_concurrency`): the next one is answered 503 `unavailable` with
  `Retry-After` in the envelope (uvicorn's own limit answers in plain text, and also counts idle connections).
On a deadline the connection is closed; a request that had begun gets a 408 first.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from tally_server._json import dumps
from tally_server._limits import MAX_BODY_BYTES
from tally_server.errors import envelope

__all__ = [
    "TIMED_OUT_SCOPE_KEY",
    "EnvelopedHttpToolsProtocol",
    "HttpLimits",
    "TallyUvicornConfig",
    "bind_socket",
    "uvicorn_config",
]

logger = logging.getLogger("tally_server.http")

TIMED_OUT_SCOPE_KEY = "tally.timed_out"
"""Set in a request's ASGI scope when its body did not arrive in time (the application logs it as a 408)."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How long a client may take to send a request, how large its head may be, how many may run at once.

    The defaults (also `tally serve`'s, docs/server.md): 10 s for the request line and headers (an honest client
    sends them in one packet), 60 s for a body (the 5 MiB largest one at about 700 kbit/s), 64 KiB of request
    line and headers (about httptools' own URL limit; Node.js allows 16 KiB), and 256 requests in flight (each
    can hold a 5 MiB body while it is read; the database has 40 worker threads, so more would only queue).
    """

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_header_bytes: int = 65_536
    limit_concurrency: int | None = 256

    def __post_init__(self) -> None:
        if not (self.header_timeout > 0 and self.body_timeout > 0):
            raise ValueError("header_timeout and body_timeout must be positive numbers of seconds")
        if self.max_header_bytes < 1024:
            raise ValueError("max_header_bytes must be at least 1024")
        if self.limit_concurrency is not None and self.limit_concurrency < 1:
            raise ValueError("limit_concurrency must be at least 1 (or None for no limit)")


class TallyUvicornConfig(uvicorn.Config):
    """uvicorn's configuration, carrying the `HttpLimits` that the protocol enforces."""

    def __init__(self, app: Any, *, limits: HttpLimits, **options: Any) -> None:
        super().__init__(app, **options)
        self.http_limits = limits


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing a head over the cap."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
}


class EnvelopedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with its plain-text errors replaced by the envelope, and the deadlines, the
    head cap and the concurrency limit of `HttpLimits` (see the module's docstring)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: HttpLimits = getattr(config, "http_limits", None) or HttpLimits()
        # uvicorn's own concurrency check is off: `on_headers_complete` does it, answering in the envelope.
        self.limit_concurrency = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # A request line has begun and its headers are not complete / headers complete, body not yet.
        self._in_head = self._in_body = False
        # The current head's request line and headers as the parser's callbacks report them, and the bytes
        # fed while it was unfinished (httptools buffers a header until it ends, so only those bound memory).
        self._head_bytes = self._unparsed_head_bytes = 0
        self._head_refused: _HeadTooLarge | None = None
        # The current body declared more than the JSON cap (an artifact upload): its deadline is an idle one.
        self._long_body = False
        self._body_cycle: RequestResponseCycle | None = None

    # -- connection ------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and not self._in_body:
            self._arm_head_timer()  # the first byte of a later request on a kept-alive connection
        cycle = self._body_cycle
        if (  # progress moves a long upload's deadline on (unless answered early, a 413: not waited for)
            self._long_body
            and self._in_body
            and cycle is not None
            and self._body_timer is not None
            and not cycle.response_complete
        ):
            self._arm_body_timer(cycle)
        was_in_head = self._in_head
        super().data_received(data)
        if was_in_head and self._in_head and not self.transport.is_closing():
            self._unparsed_head_bytes += len(data)
            if self._unparsed_head_bytes > self.limits.max_header_bytes:
                self._refuse_head(431)

    # -- parser callbacks --------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._unparsed_head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url), 414)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4, 431)  # "name: value\r\n"
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._in_head, self._in_body = False, True
        declared = next((value for name, value in self.headers if name.lower() == b"content-length"), b"")
        self._long_body = declared.isdigit() and int(declared) > MAX_BODY_BYTES
        limit = self.limits.limit_concurrency
        if limit is None or len(self.tasks) < limit:
            super().on_headers_complete()
            return
        app, self.app = self.app, _busy_app(limit)  # this one request is answered 503; the connection stays
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_body_timer()
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, app)
        if cycle.more_body:  # the body is still to come: it has `body_timeout` from now
            self._arm_body_timer(cycle)

    def _arm_body_timer(self, cycle: RequestResponseCycle) -> None:
        self._cancel_body_timer()
        self._body_cycle = cycle
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out, cycle)

    # -- the head cap ------------------------------------------------------------------------------------------

    def _count_head(self, size: int, status: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            self._head_refused = _HeadTooLarge(status)
            raise self._head_refused  # httptools stops parsing; uvicorn then calls send_400_response

    def _refuse_head(self, status: int) -> None:
        limit = self.limits.max_header_bytes
        if status == 414:
            message = f"The request line is longer than {limit} bytes; shorten the URL."
        else:
            message = (
                f"The request line and headers are larger than {limit} bytes together; send fewer or "
                "smaller headers."
            )
        self._send_error(status, message, {"max_header_bytes": limit})

    # -- deadlines ---------------------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a response is on its way: close after it, do not cut it
            return
        if not self._in_head:  # nothing of a request arrived: close quietly, as after an idle keep-alive
            self.transport.close()
            return
        logger.info(
            "closed a connection whose request headers did not arrive within %ss", self.limits.header_timeout
        )
        self._send_error(
            408,
            f"The request line and headers did not arrive within {self.limits.header_timeout:g} seconds.",
            {"header_timeout_seconds": self.limits.header_timeout},
        )

    def _body_timed_out(self, cycle: RequestResponseCycle) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if cycle.response_complete:  # answered without its body (a 413, a 404): stop reading the rest
            self.transport.close()
        elif cycle.response_started:
            cycle.keep_alive = False
        else:
            cycle.scope[TIMED_OUT_SCOPE_KEY] = True  # type: ignore[literal-required]
            self._send_error(
                408,
                f"The request body did not arrive within {self.limits.body_timeout:g} seconds (fewer bytes came "
                "than its Content-Length, or too slowly).",
                {"body_timeout_seconds": self.limits.body_timeout},
            )

    # -- answers the application never sees ------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        refused, self._head_refused = self._head_refused, None
        if refused is not None:
            self._refuse_head(refused.status)
            return
        message = (
            "The request is not valid HTTP/1.1 (a request line or header too long, or malformed); "
            "shorten the URL or send filters in the body where the operation allows."
        )
        self._send_error(400, message, {"reason": msg})

    def _send_error(self, status: int, message: str, details: dict[str, Any]) -> None:
        """Write an enveloped error and close the connection (no ASGI cycle answers it)."""
        request_id = "req_" + secrets.token_hex(8)
        data = dumps(envelope("invalid_request", message, request_id, details))
        head = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\n")
        head.append(b"x-request-id: " + request_id.encode() + b"\r\n")
        head.append(b"content-length: " + str(len(data)).encode() + b"\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + data)
        self.transport.close()


def _busy_app(limit: int) -> Any:
    """The ASGI app that answers one request over the concurrency limit: 503 `unavailable`, `Retry-After: 1`."""

    async def busy(scope: Any, receive: Any, send: Any) -> None:
        request_id = "req_" + secrets.token_hex(8)
        message = f"The server is handling its limit of {limit} requests at once; retry shortly."
        data = dumps(envelope("unavailable", message, request_id, {"limit_concurrency": limit}))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"retry-after", b"1"),
            (b"x-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})

    return busy


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (`port` 0 picks a free one: read it with `getsockname()`). Bound
    before the server starts, so the port it got is known before anything announces the URL.

    The protocol is named (`IPPROTO_TCP`, not 0): asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    accepted sockets whose `proto` says TCP, and they inherit it from this one. Without it every answer on a
    kept-alive connection waited about 40 ms (uvicorn writes the head and the body separately, and the second
    write waited for the client's delayed ACK of the first).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_config(app: Any, *, limits: HttpLimits | None = None, **options: Any) -> TallyUvicornConfig:
    """uvicorn's configuration for the reference server: httptools with the enveloped errors and `limits`
    (the defaults of `HttpLimits` when None), no access log (the application logs each request)."""
    return TallyUvicornConfig(
        app,
        limits=limits or HttpLimits(),
        http=EnvelopedHttpToolsProtocol,
        access_log=False,
        lifespan="on",
        **options,
    )
