"""The SQLite server's memory is bounded: every connection's page cache has a documented size, readers are at most
one per live worker thread (a thread's reader is reused after the thread ends, never left open), and the total
fits the documented budget, which is also SQLite's soft heap limit. (`make bench` reports the server's RSS under
a long load.)"""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import anyio.to_thread
from sqlalchemy import Connection

from tally_server.storage.database import CACHE_BUDGET_KIB, READER_CACHE_KIB, WRITER_CACHE_KIB, Database


def _cache_kib(conn: Connection) -> int:
    return -int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())


def _in_threads(db: Database, count: int, *, together: bool) -> list[int]:
    """`count` threads that each read once (all alive at once when `together`); each one's reader's cache."""
    barrier = threading.Barrier(count) if together else None
    caches: list[int] = []

    def read() -> None:
        with db.read() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
            caches.append(_cache_kib(conn))
            if barrier is not None:
                barrier.wait(10)

    for group in [range(count)] if together else [[i] for i in range(count)]:
        threads = [threading.Thread(target=read) for _ in group]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    return caches


def test_readers_of_threads_that_ended_are_reused_not_left_open(tmp_path: Path) -> None:
    db = Database(tmp_path / "bounded.sqlite3")
    try:
        _in_threads(db, 60, together=False)  # worker threads that come and go, one at a time
        assert db.connection_count <= 3  # the writer and a reader or two, not one per thread ever seen
        caches = _in_threads(db, 8, together=True)
        assert db.connection_count <= 1 + 8 + 1
        assert caches == [READER_CACHE_KIB] * 8
    finally:
        db.close()


def test_the_page_caches_fit_the_documented_budget(tmp_path: Path) -> None:
    async def worker_threads() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    workers = int(anyio.run(worker_threads))  # the server's request threads: readers are at most one each
    assert WRITER_CACHE_KIB + (workers + 1) * READER_CACHE_KIB <= CACHE_BUDGET_KIB
    db = Database(tmp_path / "budget.sqlite3")
    try:
        with db.write() as writer:
            assert _cache_kib(writer) == WRITER_CACHE_KIB
        with db.read() as reader:
            assert _cache_kib(reader) == READER_CACHE_KIB
            limit = int(reader.exec_driver_sql("PRAGMA soft_heap_limit").scalar_one())
        assert 0 < limit <= CACHE_BUDGET_KIB * 1024  # SQLite trims its caches before passing it, process-wide
    finally:
        db.close()
