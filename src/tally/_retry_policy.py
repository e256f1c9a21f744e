"""Whether to retry and how long to wait: pure arithmetic, no I/O (plus the sleep and its test switch).

The one retry transport (`_async/_transport.py` and its generated sync twin) asks these functions every time.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "RETRY_AFTER_CAP",
    "async_sleep",
    "backoff_delay",
    "is_retry_safe",
    "parse_retry_after",
    "retry_delay",
    "set_testing",
    "sleep",
    "status_is_retryable",
    "testing",
]

BACKOFF_BASE = 0.5
"""Seconds before the first retry (before jitter); doubles every attempt."""
BACKOFF_CAP = 8.0
"""The longest backoff between two attempts (before jitter)."""
RETRY_AFTER_CAP = 30.0
"""A `Retry-After` up to this many seconds is waited out; a longer one ends the retries (the error is raised).
"""

_RETRYABLE_STATUSES = frozenset({408, 429})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def is_retry_safe(method: str, headers: Mapping[str, str]) -> bool:
    """True when repeating this request cannot do anything twice: a read, or a write with a key."""
    return method in _SAFE_METHODS or "idempotency-key" in headers


def status_is_retryable(status_code: int, error_code: str | None) -> bool:
    """408, 429 and 5xx are retryable, and 409 only when the same key's first request is still running."""
    if status_code in _RETRYABLE_STATUSES or status_code >= 500:
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


def backoff_delay(retry_number: int, *, rand: float) -> float:
    """Exponential backoff, full jitter: uniform in [0, min(cap, base * 2**(n-1))); `rand` in [0, 1)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(retry_number - 1, 0))
    return ceiling * rand


def retry_delay(retry_number: int, retry_after: str | None, *, rand: float | None = None) -> float | None:
    """How long to wait before retry number `retry_number` (1-based), or None to stop retrying.

    A `Retry-After` the server sent wins when it is within `RETRY_AFTER_CAP`; beyond it we stop, since waiting
    less than the server asked for would only be refused again."""
    after = parse_retry_after(retry_after)
    if after is not None:
        return after if after <= RETRY_AFTER_CAP else None
    return backoff_delay(retry_number, rand=random.random() if rand is None else rand)


# ---- sleeping, and the switch that removes it in tests -----------------------------------------------------
class _Testing:
    active = False
    sleeps: list[float] = []  # noqa: RUF012 - one process-wide record, like stamina's


def set_testing(active: bool) -> None:
    """Switch off waiting between retries process-wide (for test suites); the waits are recorded instead."""
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
