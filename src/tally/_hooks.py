"""`tally.Hooks`: code of yours that runs around each request the SDK sends (Speakeasy's SDK hooks).

    def stamp(request: httpx.Request) -> None:
        request.headers["X-Trace"] = "abc"            # change it in place (or return another httpx.Request)

    client = Tally(hooks=tally.Hooks(before_request=stamp, after_error=report))
    client.experiments.get(experiment_id, hooks=tally.Hooks(after_success=lambda response: ...))

When they run: once per HTTP request the SDK sends (one per method call; one per page of a `list()`; one more
when the client mints an ingestion key), around the retry transport, NOT once per attempt:

- `before_request(request)` runs before the first attempt, after the SDK has built the request (auth,
  `Idempotency-Key`, the options' extras, the telemetry header): what it changes is sent on every attempt.
  It returns the request to send, or None to send the one it was given (changed in place);
- `after_success(response)` runs once the final attempt's answer is a 2xx and decoded as the spec says;
- `after_error(error)` runs with the exception the call is about to raise once retries are over: an
  `APIStatusError` (non-2xx, its `.attempts` says how many were made), an `APIConnectionError` /
  `APITimeoutError`, or a `ResponseValidationError`. Exactly one of `after_success` and `after_error` runs.

Their return values (but `before_request`'s) are ignored: they observe, the call's result or error is
unchanged. A hook that raises stops the call and its exception propagates to the caller (from `after_error`,
with the call's own error as its `__context__`). Hooks add up: the constructor's run first, then those of
`with_options(hooks=...)`, then the call's own. On `AsyncTally` a hook may be a coroutine function (it is
awaited); a sync `Tally` calls hooks plainly and says so if one returns a coroutine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "HookChain",
    "Hooks",
    "after_error",
    "after_success",
    "async_after_error",
    "async_after_success",
    "async_before_request",
    "before_request",
    "chain",
]

BeforeRequest = Callable[[httpx.Request], Any]
AfterSuccess = Callable[[httpx.Response], Any]
AfterError = Callable[[BaseException], Any]


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callables run around each request: `before_request(request)` may change the `httpx.Request` (in place,
    or by returning another); `after_success(response)` sees the final 2xx `httpx.Response`;
    `after_error(error)` sees the final exception. Each is optional. Pass as `Tally(hooks=...)`,
    `with_options(hooks=...)` or per call (`hooks=`)."""

    before_request: BeforeRequest | None = None
    after_success: AfterSuccess | None = None
    after_error: AfterError | None = None

    def __post_init__(self) -> None:
        for name, argument in _ARGUMENTS.items():
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(
                    f"Hooks.{name} must be a callable taking the {argument}, not {type(value).__name__}"
                )


_ARGUMENTS = {
    "before_request": "httpx.Request",
    "after_success": "httpx.Response",
    "after_error": "exception",
}


HookChain = tuple[Hooks, ...]
"""The hooks in force for a call, in the order they run."""


def chain(base: HookChain, more: Any) -> HookChain:
    """`base` followed by `more` (a `tally.Hooks`, or None for nothing more)."""
    if more is None:
        return base
    if not isinstance(more, Hooks):
        raise TypeError(f"hooks must be a tally.Hooks, not {type(more).__name__}")
    return (*base, more)


def _sync_result(name: str, result: Any) -> Any:
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # no "coroutine was never awaited" warning on top of the error
        raise TypeError(
            f"Hooks.{name} returned an awaitable: a sync Tally calls hooks plainly; "
            "use a plain function, or AsyncTally for coroutine hooks"
        )
    return result


def _checked(request: httpx.Request, result: Any) -> httpx.Request:
    """What `before_request` returned: None keeps `request`; another request keeps its timeout and policy."""
    if result is None or result is request:
        return request
    if not isinstance(result, httpx.Request):
        raise TypeError(
            f"Hooks.before_request must return an httpx.Request or None, not {type(result).__name__}"
        )
    for name, value in request.extensions.items():
        result.extensions.setdefault(name, value)
    return result


async def async_before_request(hooks: HookChain, request: httpx.Request) -> httpx.Request:
    for hook in hooks:
        if hook.before_request is not None:
            result = hook.before_request(request)
            if inspect.isawaitable(result):
                result = await result
            request = _checked(request, result)
    return request


def before_request(hooks: HookChain, request: httpx.Request) -> httpx.Request:
    for hook in hooks:
        if hook.before_request is not None:
            request = _checked(request, _sync_result("before_request", hook.before_request(request)))
    return request


async def async_after_success(hooks: HookChain, response: httpx.Response) -> None:
    for hook in hooks:
        if hook.after_success is not None:
            result = hook.after_success(response)
            if inspect.isawaitable(result):
                await result


def after_success(hooks: HookChain, response: httpx.Response) -> None:
    for hook in hooks:
        if hook.after_success is not None:
            _sync_result("after_success", hook.after_success(response))


async def async_after_error(hooks: HookChain, error: BaseException) -> None:
    for hook in hooks:
        if hook.after_error is not None:
            result = hook.after_error(error)
            if inspect.isawaitable(result):
                await result


def after_error(hooks: HookChain, error: BaseException) -> None:
    for hook in hooks:
        if hook.after_error is not None:
            _sync_result("after_error", hook.after_error(error))
