"""Rate awareness: pace requests from the server's `X-RateLimit-*` headers so that a client alone under its limit
is never refused with a 429. Pure arithmetic on a caller-supplied clock; the transport does the waiting.

The server's headers (spec: rate limits) describe a token bucket per API key:
- `X-RateLimit-Limit`: the bucket's capacity (requests);
- `X-RateLimit-Remaining`: whole requests left after this one;
- `X-RateLimit-Reset`: seconds until the bucket is full again (an epoch time, as GitHub sends, is understood
  too: a value above 10^9 is taken as one).

The pacer keeps a local copy of each key's bucket:
- refill rate: `Limit / (the largest Reset seen)`. The server rounds Reset up, so this never overestimates the
  rate of a bucket whose Reset was seen from near empty (our server refills `Limit` in one second and says so
  from the first answer);
- level: after every answer, `min(local level, Remaining)`. The local level already counts requests sent but not
  yet answered, so several threads or tasks sharing one client cannot together spend more than the bucket;
- each request takes one token; when the level would go below zero the request waits `-level / rate` seconds
  (plus a small margin) and its slot is booked: the bucket is recorded as empty at that future instant, so
  concurrent callers queue up one slot apart instead of all firing at once.

Before the first answer with a given key nothing is known: the first request goes alone ("probe") and the others
wait for its answer (`reserve` returns `PROBING`; the transport polls briefly). A server that sends no
`X-RateLimit-*` headers turns pacing off for that key after the first answer: the cost is one header lookup a
response.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from tally._headers import header

__all__ = [
    "PACE_MARGIN",
    "PACE_MARGIN_SECONDS",
    "PROBE_POLL",
    "PROBING",
    "RateLimitState",
    "RatePacer",
    "async_pace",
    "pace",
    "read_rate_headers",
]

PROBING = -1.0
"""What `reserve` returns while the first request with a key is in flight: poll again after `PROBE_POLL`."""
PROBE_POLL = 0.005
"""Seconds between two looks at a key whose first answer is awaited."""
PACE_MARGIN = 0.01
PACE_MARGIN_SECONDS = 0.001
"""A paced request waits 1% + 1 ms longer than the arithmetic says, so that it never lands exactly on the instant
the server's bucket refills (where rounding on either side could refuse it)."""
_EPOCH_THRESHOLD = 1e9


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The three headers of one answer, parsed."""

    limit: float
    remaining: float
    reset: float


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def read_rate_headers(headers: httpx.Headers, *, wall_now: float | None = None) -> RateLimitState | None:
    """The `X-RateLimit-*` headers of an answer, or None when absent or unreadable."""
    limit = _number(header(headers, b"x-ratelimit-limit"))
    if limit is None:
        return None
    remaining = _number(header(headers, b"x-ratelimit-remaining"))
    reset = _number(header(headers, b"x-ratelimit-reset"))
    if remaining is None or reset is None or limit <= 0:
        return None
    if reset > _EPOCH_THRESHOLD:
        reset -= time.time() if wall_now is None else wall_now
    return RateLimitState(limit=limit, remaining=max(remaining, 0.0), reset=max(reset, 0.0))


class _Bucket:
    __slots__ = ("capacity", "level", "max_reset", "probing", "stamp", "unlimited")

    def __init__(self) -> None:
        self.capacity = 0.0
        self.level = 0.0
        self.max_reset = 0.0
        self.stamp = 0.0
        self.probing = True
        self.unlimited = False

    @property
    def rate(self) -> float:
        return self.capacity / self.max_reset if self.max_reset > 0 else 0.0


class RatePacer:
    """Local buckets per API key (the `Authorization` header's value, never logged or shown). Thread-safe; the
    lock is held for arithmetic only, so one pacer serves threads and an event loop alike."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def unlimited(self, key: str) -> bool:
        """True when the server said nothing of limits for `key` (the fast path: no lock)."""
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.unlimited

    def reserve(self, key: str, now: float) -> float:
        """Take one request's token for `key`: 0.0 to go now, seconds to wait first, or `PROBING`."""
        bucket = self._buckets.get(key)
        if bucket is not None and bucket.unlimited:
            return 0.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                self._buckets[key] = _Bucket()  # this request is the probe
                return 0.0
            if bucket.unlimited:
                return 0.0
            if bucket.probing:
                return PROBING
            rate = bucket.rate
            if rate <= 0:  # only the bucket's level is known (no Reset yet): spend it, then probe again
                if bucket.level >= 1:
                    bucket.level -= 1
                    return 0.0
                bucket.probing = True
                return 0.0
            level = min(bucket.capacity, bucket.level + (now - bucket.stamp) * rate) - 1.0
            if level >= 0:
                bucket.level, bucket.stamp = level, now
                return 0.0
            wait = -level / rate * (1.0 + PACE_MARGIN) + PACE_MARGIN_SECONDS
            bucket.level, bucket.stamp = 0.0, now + wait  # the slot taken: empty at the moment it is used
            return wait

    def observe(self, key: str, state: RateLimitState | None, now: float) -> None:
        """Record an answer's headers (None: the answer had none, or the request got no answer)."""
        if state is None:
            bucket = self._buckets.get(key)
            if bucket is not None and bucket.unlimited:
                return
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket()
            if state is None:
                if bucket.probing and bucket.capacity == 0:
                    bucket.unlimited = True  # the server does not limit this key (or says nothing of it)
                bucket.probing = False
                return
            bucket.unlimited = False
            if bucket.capacity and bucket.rate > 0:
                level = min(bucket.capacity, bucket.level + (now - bucket.stamp) * bucket.rate)
            else:
                level = state.remaining
            bucket.capacity = state.limit
            bucket.max_reset = max(bucket.max_reset, state.reset)
            bucket.level, bucket.stamp = min(level, state.remaining), now
            bucket.probing = False

    def forget_probe(self, key: str) -> None:
        """The probe got no answer (a connection failure): let the next request probe again."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None and bucket.probing and bucket.capacity == 0:
                del self._buckets[key]


# The pacing waits are real even under `tally.retries.testing()`: skipping them would cause the very 429s
# they exist to avoid.
def pace(seconds: float) -> None:
    time.sleep(seconds)


async def async_pace(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
