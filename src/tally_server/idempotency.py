"""Idempotency-Key handling, scoped per organisation.

The fingerprint is the method, path, query string and the SHA-256 of the body. A finished request is replayed
with `Idempotent-Replayed: true`; another fingerprint is 422 `idempotency_key_reused`; a request still running is
409 `idempotency_in_progress` with `Retry-After: 1`. 2xx and 4xx answers are stored; 5xx answers are not (the
running record is deleted, so a retry runs again). Records are kept for `RETENTION` and then purged
opportunistically. They never hold a token: a `createIngestionKey` answer is stored without it and a replay
issues the key a new one (see `tally_server.handlers.ingestion_keys`). The record of an operation that ran is
written in the operation's own transaction (`Repository.atomic`, see `pipeline.Pipeline._run_recorded`).

A claim whose request will never finish (its process killed, its database session cut) must not block the key:
on PostgreSQL a claim is held by the claiming request's database session and taken over as soon as that session
ends (`tally_server.storage.store`, `dialects.try_claim_lock`); on SQLite, where one process owns the file, the
claims left 'running' are released when the server starts, and one 'running' for `STALE_SECONDS` is taken over.
"""

from __future__ import annotations

import hashlib
import threading
import time

from tally_server.errors import ApiError
from tally_server.storage.repository import IdempotencyClaim, Repository

__all__ = ["RETENTION_SECONDS", "IdempotencyGate", "fingerprint"]

RETENTION_SECONDS = 24 * 3600
STALE_SECONDS = 600  # SQLite: a record "running" this long belongs to a request that will never finish
_PURGE_EVERY_SECONDS = 600
_US = 1_000_000


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (
        method.upper().encode(),
        path.encode("utf-8", "surrogateescape"),
        query.encode("latin-1", "replace"),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()


class IdempotencyGate:
    """Claims, completes and releases Idempotency-Key records."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._last_purge = 0.0

    def claim(self, org_pk: int, key: str, print_: str) -> IdempotencyClaim:
        """`claimed` (go ahead) or `done` (replay it); raises for `mismatch` and `running`."""
        now_us = time.time_ns() // 1000
        self._maybe_purge(now_us)
        claim = self.repo.idempotency_claim(
            org_pk, key, print_, now_us, now_us - RETENTION_SECONDS * _US, now_us - STALE_SECONDS * _US
        )
        if claim.state == "mismatch":
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with another request; use a new key.",
            )
        if claim.state == "running":
            raise ApiError(
                409,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still running; retry shortly.",
                None,
                {"Retry-After": "1"},
            )
        return claim

    def finish(self, org_pk: int, key: str, status: int, body: bytes, headers: dict[str, str]) -> None:
        if status >= 500:
            self.repo.idempotency_release(org_pk, key)
        else:
            self.repo.idempotency_complete(org_pk, key, status, body, headers)

    def release(self, org_pk: int, key: str) -> None:
        self.repo.idempotency_release(org_pk, key)

    def _maybe_purge(self, now_us: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_purge < _PURGE_EVERY_SECONDS:
                return
            self._last_purge = now
        self.repo.idempotency_purge(now_us - RETENTION_SECONDS * _US)
