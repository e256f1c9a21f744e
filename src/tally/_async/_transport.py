"""The one retry transport: wraps any httpx transport; retries what is safe to retry, within the call's deadline,
and paces requests by the server's rate-limit headers.

Every decision is someone else's pure function: whether and how long to wait (`tally._retry_policy.next_delay`,
from the request's `RetryPolicy` in `request.extensions`), how to pace (`tally._pacing.RatePacer`). What is left
here is the loop: send, read, observe, wait, send again. Each attempt, its body included, ends in wall-clock time
at its `timeout` or the call's deadline, whichever is first (`tally._deadline`). The n-th retry carries
`X-Tally-Retry-Count: n` (a first attempt none), and each attempt is logged on the client's logger (`tally` by
default), its URL masked (`tally._redact`): one line at INFO; at DEBUG also the request and the response, headers
and bodies, redacted and cut (`tally._debug_log`).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx

from tally._deadline import AsyncAttemptDeadline, attempt_end
from tally._headers import RETRY_COUNT_HEADER, header
from tally._logging import logger as default_logger
from tally._options import POLICY_EXTENSION, STREAM_EXTENSION
from tally._pacing import PROBE_POLL, PROBING, RatePacer, async_pace, read_rate_headers
from tally._redact import redact_url
from tally._retry_policy import DEFAULT_POLICY, SAFE_METHODS, RetryPolicy, async_sleep, next_delay

__all__ = ["AsyncClientTransport", "AsyncRetryTransport"]

_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _error_code(content: bytes) -> str | None:
    import msgspec

    from tally._error_body import CODE_DECODER

    try:
        envelope = CODE_DECODER.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return envelope.error.code if envelope.error else None


def _clipped(timeout: dict[str, float | None], remaining: float) -> dict[str, float | None]:
    """The attempt's timeouts, none longer than what is left of the call's deadline."""
    return {
        name: remaining if value is None or value > remaining else value for name, value in timeout.items()
    }


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """Retries and pacing around an inner transport (httpx's, aiohttp's, a mock, or the caller's own client)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        logger: logging.Logger | None = None,
        pacer: RatePacer | None = None,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._logger = logger or default_logger
        self._pacer = pacer if pacer is not None else RatePacer()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        policy: RetryPolicy = extensions.get(POLICY_EXTENSION, self._policy)
        started = time.monotonic()
        deadline = None if policy.max_elapsed is None else started + policy.max_elapsed
        timeout = extensions.get("timeout")
        request_headers = request.headers
        streamed = bool(extensions.get(STREAM_EXTENSION))
        safe = request.method in SAFE_METHODS or header(request_headers, b"idempotency-key") is not None
        pace_key = header(request_headers, b"authorization")
        pacer = self._pacer
        log = self._logger
        logging_on = log.isEnabledFor(logging.INFO)
        debug_on = log.isEnabledFor(logging.DEBUG)
        retries = 0
        while True:
            if pace_key is not None and not pacer.unlimited(pace_key):
                await self._pace(pace_key, deadline)
            if deadline is not None and timeout is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise httpx.ReadTimeout(_deadline_note(policy), request=request)
                extensions["timeout"] = _clipped(timeout, remaining)
            if retries:
                request_headers[RETRY_COUNT_HEADER] = str(retries)
            if debug_on:
                # At DEBUG only: a client that logs less never loads it.
                from tally._debug_log import describe_request

                log.debug("%s", describe_request(request, retries + 1))
            attempt_started = time.perf_counter()
            end = attempt_end(time.monotonic(), timeout, deadline)
            response: httpx.Response | None = None
            try:
                # The whole attempt, body included, ends at `end` in wall-clock time (tally._deadline): httpx's
                # timeouts are per read, so a server that trickles bytes would otherwise hold it for ever.
                # A streamed answer (STREAM_EXTENSION) that succeeded is left unread for its caller: its headers
                # are bounded by the attempt, its body by httpx's read timeout per chunk, however long it runs.
                async with AsyncAttemptDeadline(end, request) as bound:
                    response = await self._inner.handle_async_request(request)
                    if not (streamed and response.status_code < 400):
                        response.stream = bound(response)
                        await response.aread()
            except _RETRYABLE_ERRORS as exc:
                if response is not None:
                    await response.aclose()
                if pace_key is not None:
                    pacer.forget_probe(pace_key)
                now = time.monotonic()
                delay = next_delay(
                    policy,
                    retries_done=retries,
                    safe=safe,
                    connect_failed=isinstance(exc, httpx.ConnectError),
                    now=now,
                    deadline=deadline,
                )
                if logging_on:
                    _log(log, request, type(exc).__name__, attempt_started, retries, None, delay, policy)
                if delay is None:
                    if (
                        deadline is not None
                        and now >= deadline - 0.001
                        and isinstance(exc, httpx.TimeoutException)
                    ):
                        raise httpx.ReadTimeout(_deadline_note(policy), request=request) from exc
                    raise
                retries += 1
                await async_sleep(delay)
                continue
            # httpx sets `elapsed` when the body is closed, which was before it saw the response: set it here.
            response.elapsed = timedelta(seconds=time.perf_counter() - attempt_started)
            if debug_on:
                from tally._debug_log import describe_response

                log.debug("%s", describe_response(request, response, retries + 1))
            headers = response.headers
            if pace_key is not None:
                pacer.observe(pace_key, read_rate_headers(headers), time.monotonic())
            status = response.status_code
            if status >= 400 and retries < policy.max_retries:
                error_code: str | None = None
                if status == 409:
                    error_code = _error_code(response.content)
                delay = next_delay(
                    policy,
                    retries_done=retries,
                    safe=safe,
                    status=status,
                    error_code=error_code,
                    headers=headers,
                    now=time.monotonic(),
                    deadline=deadline,
                )
                if delay is not None:
                    if logging_on:
                        _log(log, request, str(status), attempt_started, retries, headers, delay, policy)
                    await response.aclose()
                    retries += 1
                    await async_sleep(delay)
                    continue
            if logging_on:
                _log(log, request, str(status), attempt_started, retries, headers, None, policy)
            return response

    async def _pace(self, key: str, deadline: float | None) -> None:
        """Wait for this key's next slot (never past the deadline: then go, and let the server decide)."""
        while True:
            wait = self._pacer.reserve(key, time.monotonic())
            probing = wait == PROBING
            if probing:
                wait = PROBE_POLL
            elif wait <= 0:
                return
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return
            await async_pace(wait)
            if not probing:
                return

    async def aclose(self) -> None:
        await self._inner.aclose()


class AsyncClientTransport(httpx.AsyncBaseTransport):
    """Sends through the caller's own `httpx.AsyncClient` (`AsyncTally(http_client=...)`), so that its auth,
    proxies, TLS settings, event hooks and default headers apply; Tally's retries, pacing, auth and options wrap
    it. Closing Tally leaves the caller's client open: it is theirs."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        if not isinstance(client, httpx.AsyncClient):
            raise TypeError(f"http_client must be an httpx.AsyncClient, not {type(client).__name__}")
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name, value in self._client.headers.items():
            if name not in request.headers:
                request.headers[name] = value
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        """Nothing: the caller closes their own client."""


def _deadline_note(policy: RetryPolicy) -> str:
    """The timeout's message when the call's deadline ended it (the error's `attempts` says how many were made)."""
    return (
        f"the call's deadline of {policy.max_elapsed:g} s (RetryPolicy.max_elapsed) passed; "
        "raise it with retry=tally.RetryPolicy(max_elapsed=...)"
    )


def _log(
    log: logging.Logger,
    request: httpx.Request,
    outcome: str,
    started: float,
    retries: int,
    headers: httpx.Headers | None,
    delay: float | None,
    policy: RetryPolicy,
) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000
    request_id = headers.get("x-request-id") if headers is not None else None
    note = f"; retry {retries + 1} of {policy.max_retries} in {delay:.2f} s" if delay is not None else ""
    log.info(
        "%s %s -> %s in %.1f ms request_id=%s attempt=%d%s",
        request.method,
        redact_url(request.url),
        outcome,
        elapsed_ms,
        request_id,
        retries + 1,
        note,
    )
