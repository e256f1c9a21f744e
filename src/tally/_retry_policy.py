"""Whether to retry and how long to wait: the policy and its pure arithmetic, no I/O (plus the sleep and its test
switch).

The one retry transport (`_async/_transport.py` and its generated sync twin) asks `next_delay` after every
attempt; everything it decides from (the policy, the attempt count, the status, the headers, the clock and the
call's deadline) is passed in, so that the tests here need no HTTP and no clock.

The header rules, in order:
- `x-should-retry: false` stops, `x-should-retry: true` retries even a status the policy would not (both only
  within `max_retries`, the deadline, and for requests safe to repeat);
- `retry-after-ms` (milliseconds), else `Retry-After` (delta-seconds or an HTTP date), is the wait when the
  server sent one and it is at most `RETRY_AFTER_CAP`; a longer one stops (waiting less would only be refused
  again); a wait that would end after the call's deadline stops too;
- otherwise exponential backoff: `initial_interval * exponent ** (n - 1)`, at most `max_interval`, less a random
  part of up to `jitter` of it.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_MAX_ELAPSED",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_STATUSES",
    "RETRY_AFTER_CAP",
    "SAFE_METHODS",
    "RetryPolicy",
    "async_sleep",
    "backoff_delay",
    "is_retry_safe",
    "next_delay",
    "parse_retry_after",
    "parse_retry_after_ms",
    "retry_delay",
    "set_testing",
    "sleep",
    "status_is_retryable",
    "testing",
]

BACKOFF_BASE = 0.5
"""Seconds before the first retry (before jitter); times `exponent` every further retry."""
BACKOFF_CAP = 8.0
"""The longest backoff between two attempts (before jitter)."""
RETRY_AFTER_CAP = 30.0
"""A `Retry-After` up to this many seconds is waited out; a longer one ends the retries (the error is raised).
"""
DEFAULT_MAX_RETRIES = 5
"""Retries after the first attempt. With the default backoff the waits add up to 11.6-15.5 s, so a server that
restarts within about ten seconds is ridden out (refused connections are retried until it is back)."""
DEFAULT_MAX_ELAPSED = 30.0
"""The default deadline of one call, all attempts and waits included: a server that accepts connections but never
answers fails the call after 30 s (3 attempts of the 10 s timeout, or 1.5 of the 20 s ingest timeout)."""
DEFAULT_RETRY_STATUSES = frozenset({408, 429, *range(500, 600)} - {507})
"""Statuses retried by default (409 `idempotency_in_progress` is always retried: the first request is still
running). Not 507 `insufficient_storage`: a full disk stays full however long the client waits, so retrying
would only repeat the same refusal until the deadline."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods that may be repeated without a key; POST and PATCH are safe with an `Idempotency-Key`. A DELETE
repeated without one may report NotFoundError for a delete that worked, which is why the SDK sends one on every
DELETE too (`tally._base.KEYED_METHODS`)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a call retries: per client (`Tally(retry=...)`, `with_options(retry=...)`) or per call (`retry=`).

    `max_retries=` on a client or a call is the short form: it replaces this policy's `max_retries` only.
    `max_elapsed` is the call's deadline in seconds, attempts and waits included (None: no deadline, only
    `max_retries` and the per-attempt `timeout` bound the call); every attempt's timeout is cut to what is left
    of it."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_interval: float = BACKOFF_BASE
    max_interval: float = BACKOFF_CAP
    exponent: float = 2.0
    jitter: float = 0.25
    """The random part: each wait is `backoff * (1 - jitter * U)`, U uniform in [0, 1); 1.0 is full jitter."""
    max_elapsed: float | None = DEFAULT_MAX_ELAPSED
    retry_statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    retry_connection_errors: bool = True
    """Retry connection failures and timeouts (a refused connection is retried even for an unsafe request:
    nothing was sent)."""

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            problems.append(f"max_retries must be an int of 0 or more, not {self.max_retries!r}")
        if not self.initial_interval >= 0:
            problems.append(f"initial_interval must be 0 or more seconds, not {self.initial_interval!r}")
        if not self.max_interval >= self.initial_interval:
            problems.append(
                f"max_interval ({self.max_interval!r}) must be at least initial_interval "
                f"({self.initial_interval!r})"
            )
        if not self.exponent >= 1:
            problems.append(f"exponent must be 1 or more, not {self.exponent!r}")
        if not 0 <= self.jitter <= 1:
            problems.append(f"jitter must be from 0 to 1, not {self.jitter!r}")
        if self.max_elapsed is not None and not self.max_elapsed > 0:
            problems.append(f"max_elapsed must be more than 0 seconds (or None), not {self.max_elapsed!r}")
        if problems:
            raise ValueError("RetryPolicy: " + "; ".join(problems))
        if not isinstance(self.retry_statuses, frozenset):
            object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    def with_max_retries(self, max_retries: int) -> RetryPolicy:
        return self if max_retries == self.max_retries else replace(self, max_retries=max_retries)

    def backoff(self, retry_number: int, rand: float) -> float:
        """The wait before retry `retry_number` (1-based) without a server hint; `rand` in [0, 1)."""
        ceiling = min(self.max_interval, self.initial_interval * self.exponent ** max(retry_number - 1, 0))
        return ceiling * (1.0 - self.jitter * rand)


DEFAULT_POLICY = RetryPolicy()


def is_retry_safe(method: str, headers: Mapping[str, str]) -> bool:
    """True when repeating this request cannot do anything twice: a read, or a write with a key."""
    return method in SAFE_METHODS or "idempotency-key" in headers


def status_is_retryable(
    status_code: int, error_code: str | None, statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
) -> bool:
    """A status of the policy's set, or 409 when the same key's first request is still running."""
    if status_code in statuses:
        return True
    return status_code == 409 and error_code == "idempotency_in_progress"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)


def parse_retry_after_ms(value: str | None) -> float | None:
    """`retry-after-ms` (as openai's and Stainless's servers send it) in seconds, or None."""
    if value is None:
        return None
    try:
        millis = float(value.strip())
    except ValueError:
        return None
    if millis != millis or millis in (float("inf"), float("-inf")):
        return None
    return max(millis, 0.0) / 1000.0


def server_wait(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait the server asked for: `retry-after-ms` first, then `Retry-After`; None when it asked nothing."""
    after = parse_retry_after_ms(headers.get("retry-after-ms"))
    if after is None:
        after = parse_retry_after(headers.get("retry-after"), now=now)
    return after


def backoff_delay(retry_number: int, *, rand: float, policy: RetryPolicy = DEFAULT_POLICY) -> float:
    """The default policy's backoff (kept for callers of the first version)."""
    return policy.backoff(retry_number, rand)


def retry_delay(
    retry_number: int,
    retry_after: str | None,
    *,
    rand: float | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> float | None:
    """How long to wait before retry number `retry_number` (1-based), or None to stop retrying.

    A `Retry-After` the server sent wins when it is within `RETRY_AFTER_CAP`; beyond it we stop."""
    after = parse_retry_after(retry_after)
    if after is not None:
        return after if after <= RETRY_AFTER_CAP else None
    return policy.backoff(retry_number, random.random() if rand is None else rand)


def next_delay(
    policy: RetryPolicy,
    *,
    retries_done: int,
    safe: bool,
    status: int | None = None,
    error_code: str | None = None,
    headers: Mapping[str, str] | None = None,
    connect_failed: bool = False,
    now: float,
    deadline: float | None,
    rand: float | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up and surface this outcome.

    `status` is None when the attempt raised (a connection failure or timeout; `connect_failed` when nothing
    was sent). `now` and `deadline` are on the same monotonic clock."""
    if retries_done >= policy.max_retries:
        return None
    should: str | None = headers.get("x-should-retry") if headers is not None else None
    if should == "false":
        return None
    if status is None:
        if not policy.retry_connection_errors or not (safe or connect_failed):
            return None
    elif not safe or (
        should != "true" and not status_is_retryable(status, error_code, policy.retry_statuses)
    ):
        return None
    asked = server_wait(headers) if headers is not None else None
    if asked is not None:
        if asked > RETRY_AFTER_CAP:
            return None
        delay = asked
    else:
        delay = policy.backoff(retries_done + 1, random.random() if rand is None else rand)
    if deadline is not None and now + delay >= deadline:
        return None
    return delay


# ---- sleeping, and the switch that removes it in tests -----------------------------------------------------
class _Testing:
    active = False
    sleeps: list[float] = []  # noqa: RUF012 - one process-wide record, like stamina's


def set_testing(active: bool) -> None:
    """Switch off waiting between retries process-wide (for test suites); the waits are recorded instead.
    Rate-limit pacing (`tally._pacing`) still waits: it is what keeps a client from being refused."""
    _Testing.active = active
    _Testing.sleeps = []


@contextlib.contextmanager
def testing() -> Iterator[list[float]]:
    """Within the block, retries do not wait; the list collects each wait that would have happened (s)."""
    previous_active, previous_sleeps = _Testing.active, _Testing.sleeps
    recorded: list[float] = []
    _Testing.active, _Testing.sleeps = True, recorded
    try:
        yield recorded
    finally:
        _Testing.active, _Testing.sleeps = previous_active, previous_sleeps


def sleep(seconds: float) -> None:
    if _Testing.active:
        _Testing.sleeps.append(seconds)
        return
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    if _Testing.active:
        _Testing.sleeps.append(seconds)
        return
    import asyncio  # here, not at the top: the sync client must not load asyncio

    await asyncio.sleep(seconds)
