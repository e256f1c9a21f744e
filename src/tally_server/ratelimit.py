"""An optional per-key token bucket: `rate` requests per second, with a burst of `rate` (at least 1)."""

from __future__ import annotations

import math
import threading
import time

from tally_server.errors import ApiError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets keyed by API key id."""

    def __init__(self, rate: float) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError("the rate limit must be a positive number of requests per second")
        self.rate = float(rate)
        self.capacity = max(1.0, float(rate))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> dict[str, str]:
        """Take one token for `key`; the X-RateLimit-* headers, or 429 `rate_limited` when the bucket is
        empty."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 10_000:  # forget idle keys (a full bucket is the same as no bucket)
                self._buckets = {
                    k: v for k, v in self._buckets.items() if v[0] + (now - v[1]) * self.rate < self.capacity
                }
        headers = {
            "X-RateLimit-Limit": str(int(self.capacity)),
            "X-RateLimit-Remaining": str(max(0, int(tokens))),
            "X-RateLimit-Reset": str(max(0, math.ceil((self.capacity - tokens) / self.rate))),
        }
        if not allowed:
            retry_after = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests; retry after {retry_after} second{'s' if retry_after != 1 else ''}.",
                None,
                {**headers, "Retry-After": str(retry_after)},
            )
        return headers
