"""Retry settings and the test switch.

    import tally.retries

    with tally.retries.testing() as waits:     # retries happen at once; `waits` records what they would wait
        client.experiments.get(experiment_id)
    assert waits == [2.0]                      # e.g. a 429 with `Retry-After: 2`, then success

    tally.retries.set_testing(True)            # or for a whole test session (in conftest.py)

Policy: connection errors, timeouts, 408, 409 `idempotency_in_progress`, 429 and 5xx are retried up to
`max_retries` times, only for requests that are safe to repeat (reads, and writes carrying an
`Idempotency-Key`, which the SDK adds to every POST and PATCH). The wait is exponential backoff with full
jitter (`BACKOFF_BASE` doubling up to `BACKOFF_CAP`), or the server's `Retry-After` when it is at most
`RETRY_AFTER_CAP`; a longer one ends the retries.
"""

from __future__ import annotations

from tally._retry_policy import BACKOFF_BASE, BACKOFF_CAP, RETRY_AFTER_CAP, set_testing, testing

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "RETRY_AFTER_CAP", "set_testing", "testing"]
