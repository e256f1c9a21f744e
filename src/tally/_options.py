"""The one options mechanism: what every method accepts per call, what a client holds, and how they merge. Pure.

Every resource method takes the per-call options as `**options: Unpack[RequestOptions]` (reads) or
`Unpack[WriteOptions]` (POST, PATCH and DELETE, which add `idempotency_key`) and hands them, untouched, to the
core, which asks `Settings.call(options)` for the request's extras. No method lists the options itself, so adding
one is a change here and in the core only.

    client.experiments.get(experiment_id, timeout=2.0, max_retries=0)
    client.folders.patch(folder_id, description="x", idempotency_key="patch-1", extra_headers={"X-Trace": "1"})
    quick = client.with_options(retry=tally.RetryPolicy(max_elapsed=5.0))   # per client; shares the pool

Precedence: per-call value > `with_options` value > the client's constructor. `extra_headers`, `extra_query` and
`extra_body` merge key by key (per call wins); `max_retries` replaces only that field of the `retry` policy in
force. `hooks` add up instead: the constructor's run first, then `with_options`', then the call's
(`tally._hooks`).

The call with no options (the common case) costs one truth test: `Settings` precomputes its request extensions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypedDict

import httpx
from tally_api_types import limits as _contract

from tally._hooks import HookChain, Hooks, chain
from tally._retry_policy import DEFAULT_POLICY, RetryPolicy

__all__ = [
    "KEYED_METHODS",
    "POLICY_EXTENSION",
    "STREAM_EXTENSION",
    "CallExtras",
    "ClientOptions",
    "RequestOptions",
    "Settings",
    "TimeoutArg",
    "WriteOptions",
    "check_idempotency_key",
]

TimeoutArg = float | httpx.Timeout | None

KEYED_METHODS: Final = frozenset({"POST", "PATCH", "DELETE"})
"""The methods whose calls carry an Idempotency-Key (and take `idempotency_key=`): every write. A DELETE too:
retried after its answer was lost, a DELETE without one would meet 404 and report a failure for what worked;
with one the server replays its 204."""

POLICY_EXTENSION: Final = "tally_retry"
"""The `request.extensions` key that carries a call's `RetryPolicy` to the retry transport."""

STREAM_EXTENSION: Final = "tally_stream"
"""The `request.extensions` key that asks the retry transport to leave a 2xx body unread (a streamed answer, read
by its caller a chunk at a time); an error answer is still read whole, to decide on a retry and to report it."""


class RequestOptions(TypedDict, total=False):
    """Per-call options of every method (as keyword arguments)."""

    timeout: TimeoutArg
    """Per attempt, in seconds or an `httpx.Timeout`: each network wait ends after its phase's timeout, and the
    attempt as a whole, body included, after the longest phase in wall-clock time (none if a phase is None).
    The call as a whole is bounded by `retry.max_elapsed`."""
    max_retries: int
    """Retries after the first attempt (the short form of `retry`)."""
    retry: RetryPolicy
    """The whole retry policy for this call (`max_retries`, backoff, deadline, what is retried)."""
    extra_headers: Mapping[str, str]
    """Headers to add (or replace) on the request."""
    extra_query: Mapping[str, Any]
    """Query parameters to add (or replace)."""
    extra_body: Mapping[str, Any]
    """JSON members to add (or replace) at the top level of the body (POST and PATCH)."""
    hooks: Hooks
    """`tally.Hooks` for this call, run after the client's (`tally._hooks`)."""


class WriteOptions(RequestOptions, total=False):
    """Per-call options of every POST, PATCH and DELETE method."""

    idempotency_key: str
    """Sent as `Idempotency-Key` on every attempt (default: one minted per call). For a `metrics.ingest` that is
    split into several requests, request `i > 0` uses `<key>.<i>`."""


class ClientOptions(TypedDict, total=False):
    """What `with_options` (and the client's constructor) set for every call of a client."""

    timeout: TimeoutArg
    ingest_timeout: TimeoutArg
    max_retries: int
    retry: RetryPolicy
    extra_headers: Mapping[str, str]
    extra_query: Mapping[str, Any]
    extra_body: Mapping[str, Any]
    hooks: Hooks


_REQUEST_KEYS = frozenset(WriteOptions.__annotations__) | frozenset(RequestOptions.__annotations__)
_CLIENT_KEYS = frozenset(ClientOptions.__annotations__)
_KEY_CHARS = rf"[\x21-\x7e]{{{_contract.IDEMPOTENCY_KEY_MIN_LENGTH},{_contract.IDEMPOTENCY_KEY_MAX_LENGTH}}}"
"""The contract's `IdempotencyKey` lengths; its characters without the space, which a header would lose at the
ends. Compiled on first use (`re`'s cache), as only a caller's own `idempotency_key` is checked."""


def check_idempotency_key(key: Any) -> str:
    """The caller's `idempotency_key`, or a `ValueError` that names the rule (spec: 1-255 printable ASCII)."""
    if not isinstance(key, str) or not re.fullmatch(_KEY_CHARS, key):
        raise ValueError(
            f"idempotency_key must be {_contract.IDEMPOTENCY_KEY_MIN_LENGTH} to "
            f"{_contract.IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters without spaces, not {key!r}"
        )
    return key


def _timeout_dict(timeout: TimeoutArg) -> dict[str, float | None]:
    value = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    return value.as_dict()


def _unknown(keys: Any, allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(keys) - allowed)
    if unknown:
        raise TypeError(
            f"{where} got unexpected option(s) {', '.join(unknown)}; the options are: {', '.join(sorted(allowed))}"
        )


@dataclass(frozen=True, slots=True, eq=False)
class CallExtras:
    """What one call adds to its request: the extensions (timeout, policy) and the caller's extras."""

    extensions: dict[str, Any]
    idempotency_key: str | None = None
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, Any] | None = None
    extra_body: Mapping[str, Any] | None = None
    hooks: HookChain = ()


@dataclass(frozen=True, slots=True, eq=False)
class Settings:
    """A client's per-call settings; `with_options` makes a copy with some changed."""

    timeout: TimeoutArg
    ingest_timeout: TimeoutArg
    retry: RetryPolicy = DEFAULT_POLICY
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, Any] | None = None
    extra_body: Mapping[str, Any] | None = None
    hooks: HookChain = ()
    _plain: tuple[CallExtras, CallExtras] = field(init=False, repr=False)

    @classmethod
    def build(
        cls,
        *,
        timeout: TimeoutArg,
        ingest_timeout: TimeoutArg,
        max_retries: int | None,
        retry: RetryPolicy | None,
    ) -> Settings:
        policy = retry if retry is not None else DEFAULT_POLICY
        if not isinstance(policy, RetryPolicy):
            raise TypeError(f"retry must be a tally.RetryPolicy, not {type(policy).__name__}")
        if max_retries is not None:
            policy = _with_max_retries(policy, max_retries)
        return cls(timeout=timeout, ingest_timeout=ingest_timeout, retry=policy)

    def __post_init__(self) -> None:
        # Precomputed once: the extensions and extras of a call that passes no options.
        object.__setattr__(self, "_plain", (self._extras({}, ingest=False), self._extras({}, ingest=True)))

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    def replace(self, options: Mapping[str, Any]) -> Settings:
        """These settings with `with_options(**options)` applied."""
        _unknown(options, _CLIENT_KEYS, "with_options()")
        changes: dict[str, Any] = {}
        for name in ("timeout", "ingest_timeout"):
            if name in options:
                changes[name] = options[name]
        policy = options.get("retry", self.retry)
        if not isinstance(policy, RetryPolicy):
            raise TypeError(f"retry must be a tally.RetryPolicy, not {type(policy).__name__}")
        if "max_retries" in options:
            policy = _with_max_retries(policy, options["max_retries"])
        changes["retry"] = policy
        for name in ("extra_headers", "extra_query", "extra_body"):
            if name in options:
                changes[name] = _merged(getattr(self, name), options[name])
        if "hooks" in options:
            changes["hooks"] = chain(self.hooks, options["hooks"])
        return replace(self, **changes)

    def call(self, options: Mapping[str, Any], *, ingest: bool = False) -> CallExtras:
        """The extras of one call. `options` is the method's `**options`: usually empty, then free."""
        if not options:
            return self._plain[ingest]
        _unknown(options, _REQUEST_KEYS, "a Tally method")
        return self._extras(options, ingest=ingest)

    def _extras(self, options: Mapping[str, Any], *, ingest: bool) -> CallExtras:
        default_timeout = self.ingest_timeout if ingest else self.timeout
        timeout = options.get("timeout", default_timeout)
        policy = options.get("retry", self.retry)
        if not isinstance(policy, RetryPolicy):
            raise TypeError(f"retry must be a tally.RetryPolicy, not {type(policy).__name__}")
        if "max_retries" in options:
            policy = _with_max_retries(policy, options["max_retries"])
        key = options.get("idempotency_key")
        return CallExtras(
            extensions={"timeout": _timeout_dict(timeout), POLICY_EXTENSION: policy},
            idempotency_key=None if key is None else check_idempotency_key(key),
            extra_headers=_merged(self.extra_headers, options.get("extra_headers")),
            extra_query=_merged(self.extra_query, options.get("extra_query")),
            extra_body=_merged(self.extra_body, options.get("extra_body")),
            hooks=chain(self.hooks, options.get("hooks")),
        )


def _with_max_retries(policy: RetryPolicy, max_retries: Any) -> RetryPolicy:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int of 0 or more, not {max_retries!r}")
    return policy.with_max_retries(max_retries)


def _merged(base: Mapping[str, Any] | None, extra: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not extra:
        return base
    if not isinstance(extra, Mapping):
        raise TypeError(
            f"extra_headers, extra_query and extra_body must be mappings, not {type(extra).__name__}"
        )
    return {**base, **extra} if base else dict(extra)
