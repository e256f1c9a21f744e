"""Retry settings and the test switch.

    import tally
    import tally.retries

    client = tally.Tally(retry=tally.RetryPolicy(max_retries=8, max_elapsed=120.0))  # per client
    client.experiments.get(experiment_id, max_retries=0)                             # per call

    with tally.retries.testing() as waits:     # retries happen at once; `waits` records what they would wait
        client.experiments.get(experiment_id)
    assert waits == [2.0]                      # e.g. a 429 with `Retry-After: 2`, then success

    tally.retries.set_testing(True)            # or for a whole test session (in conftest.py)

Policy (`tally.RetryPolicy`, defaults in README "Retries, deadlines and rate limits"): connection errors,
timeouts, 408, 409 `idempotency_in_progress`, 429 and 5xx (but 507 `insufficient_storage`) are retried up to
`max_retries` times within the call's deadline `max_elapsed`, only for requests that are safe to repeat (reads,
and writes carrying an `Idempotency-Key`, which the SDK adds to every POST, PATCH and DELETE). The wait is the
server's `retry-after-ms` or `Retry-After` when it is at most `RETRY_AFTER_CAP` (a longer one ends the retries),
else exponential backoff with jitter; `x-should-retry: true|false` from the server overrides the status rule.
"""

from __future__ import annotations

from tally._retry_policy import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    DEFAULT_MAX_ELAPSED,
    DEFAULT_MAX_RETRIES,
    RETRY_AFTER_CAP,
    RetryPolicy,
    set_testing,
    testing,
)

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_MAX_ELAPSED",
    "DEFAULT_MAX_RETRIES",
    "RETRY_AFTER_CAP",
    "RetryPolicy",
    "set_testing",
    "testing",
]
