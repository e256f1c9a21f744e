"""The response cache's SQLite file: entries, their digests, LRU eviction, and recovery from a damaged file.

Why SQLite through the standard library and not `diskcache`: no new dependency (diskcache's last release is from
2023, and it pickles values), one file that several processes can read and write at once (WAL), an exact byte
count for the size cap, and `PRAGMA user_version` as the format marker. LRU eviction is one indexed column.
Imported on `client.cache.enable()` only, so a client that never enables it loads neither sqlite3 nor hashlib.

Never a crash, never wrong data:
- the file's format is `PRAGMA user_version` (`FORMAT`); a file of another format, or one SQLite cannot read
  (truncated, overwritten, not a database), is replaced by an empty one, with a warning; another program's
  SQLite database (`PRAGMA application_id` not ours, tables present) is left alone and the cache stays off;
- every row carries a BLAKE2b digest of its key, tag, guard and body, checked on every read: a row that does not
  match is deleted and counts as a miss (SQLite's own checks do not cover the bytes inside a row);
- a busy file (another process holds its lock past 2 s) makes that one lookup a miss or that one store a no-op;
  a file that fails mid-use is rebuilt; each with a warning. The call then goes to the server as if there were
  no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

__all__ = ["FORMAT", "CacheFile", "Entry", "Unusable", "namespace_of"]

T = TypeVar("T")

FORMAT = 1
"""The file's format, written as `PRAGMA user_version`. Change it when the table changes."""
_TOUCH_NS = 1_000_000_000  # how stale an entry's last use may be before a hit writes it again
_APPLICATION_ID = 0x54414C59  # "TALY": `PRAGMA application_id`, so a file is recognisably this cache's

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    used INTEGER NOT NULL,
    etag TEXT NOT NULL,
    guard TEXT,
    digest BLOB NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_use ON entries (used);
"""

Warn = Callable[[str, str], None]
"""`warn(kind, message)`: the front's warning (once per kind)."""


class Entry(NamedTuple):
    """A stored answer: its `ETag`, its body and its guard (the ETag of the terminal experiment it was read
    under, or None: `tally._cache_policy`)."""

    etag: str
    body: bytes
    guard: str | None


class Unusable(Exception):
    """The file cannot be this cache's (another program's SQLite database): leave it alone."""


def namespace_of(base_url: str, api_key: str | None) -> str:
    """The entries' namespace: a hash of the server and the key, so neither is shared and the key is not kept."""
    seed = f"{base_url.rstrip('/')}\n{api_key or ''}".encode()
    return hashlib.blake2b(seed, digest_size=16, person=b"tally-cache").hexdigest()


def _digest(key: str, etag: str, guard: str | None, body: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (key.encode(), etag.encode(), (guard or "").encode()):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(body)
    return h.digest()


class CacheFile:
    """One open cache file. Not thread-safe: the front (`tally._cache.ResponseCache`) holds a lock around it.
    Raises `Unusable` or `OSError` from the constructor only; every other method answers None or does nothing
    when the file fails, after rebuilding it."""

    def __init__(self, path: Path, max_bytes: int, warn: Warn) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._warn = warn
        self._estimate = 0  # bytes stored, as this process last counted them (the cap is checked against it)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db: sqlite3.Connection | None = self._connect()
        except sqlite3.DatabaseError as exc:
            warn("rebuild", f"tally: the response cache {path} is unreadable ({exc}); rebuilding it")
            self._remove_files()
            try:
                self._db = self._connect()
            except sqlite3.Error as again:
                raise OSError(f"cannot create {path}: {again}") from again

    # ---- entries ----------------------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        def read(db: sqlite3.Connection) -> Entry | None:
            row = db.execute(
                "SELECT etag, guard, digest, body, used FROM entries WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            etag, guard, digest, body, used = row
            body = bytes(body)
            if _digest(key, etag, guard, body) != digest:
                self._warn("digest", "tally: a response cache entry did not match its digest; dropped it")
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                return None
            stamp = time.time_ns()
            if stamp - used > _TOUCH_NS:  # LRU to the second: a walk's hits do not each write
                db.execute("UPDATE entries SET used = ? WHERE key = ?", (stamp, key))
            return Entry(etag, body, guard)

        return self._attempt("read", read)

    def put(self, key: str, etag: str, body: bytes, guard: str | None) -> None:
        size = len(body)
        if size > self.max_bytes:
            return

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO entries (key, size, used, etag, guard, digest, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, size, time.time_ns(), etag, guard, _digest(key, etag, guard, body), body),
            )
            self._estimate += size
            if self._estimate > self.max_bytes:
                self._evict(db)

        self._attempt("write", write)

    def clear(self) -> None:
        self._attempt("clear", lambda db: db.execute("DELETE FROM entries"))
        self._estimate = 0

    def totals(self) -> tuple[int, int]:
        """(bytes of bodies, entries) in the whole file."""
        row = self._attempt(
            "stats", lambda db: db.execute("SELECT total(size), count(*) FROM entries").fetchone()
        )
        return (int(row[0]), int(row[1])) if row is not None else (0, 0)

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # ---- the file ---------------------------------------------------------------------------------------------

    def _evict(self, db: sqlite3.Connection) -> None:
        """Delete the least recently used entries until the bodies fill at most 90% of the cap (so the next
        few stores do not each evict)."""
        total = int(db.execute("SELECT total(size) FROM entries").fetchone()[0])
        target = self.max_bytes * 9 // 10
        while total > target:
            victims = db.execute("SELECT key, size FROM entries ORDER BY used LIMIT 64").fetchall()
            if not victims:
                break
            for key, size in victims:
                db.execute("DELETE FROM entries WHERE key = ?", (key,))
                total -= size
                if total <= target:
                    break
        self._estimate = total

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
        try:
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if application_id not in (0, _APPLICATION_ID) or (application_id == 0 and tables):
                raise Unusable("it is another program's SQLite database")
            if version not in (0, FORMAT):
                raise sqlite3.DatabaseError(
                    f"written in format {version}; this version of tally reads {FORMAT}"
                )
            db.execute("PRAGMA journal_mode=WAL")
            # No fsync: a cache. A crash of the machine may lose or damage the last stores; SQLite's checks or the
            # rows' digests then see it, and the entry or the file is dropped, never served.
            db.execute("PRAGMA synchronous=OFF")
            if version == 0:
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={FORMAT}")
            self._estimate = int(db.execute("SELECT total(size) FROM entries").fetchone()[0])
        except BaseException:
            db.close()
            raise
        return db

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()

    def _attempt(self, what: str, action: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run `action` in one transaction. A busy file makes it a no-op; a file that turned out damaged is
        rebuilt (each with a warning). Never raises."""
        db = self._db
        if db is None:
            return None
        try:
            db.execute("BEGIN IMMEDIATE" if what in ("write", "clear") else "BEGIN")
            try:
                result = action(db)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                self._warn("busy", f"tally: the response cache is busy ({exc}); this {what} went without it")
                return None
            self._rebuild(exc)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._rebuild(exc)
        return None

    def _rebuild(self, exc: Exception) -> None:
        """The file failed mid-use (damaged, removed, unwritable): start again from an empty one, or stop."""
        self._warn("rebuild", f"tally: the response cache {self.path} is unreadable ({exc}); rebuilding it")
        self.close()
        try:
            self._remove_files()
            self._db = self._connect()
        except (OSError, sqlite3.Error, Unusable) as again:
            self._warn(
                "open", f"tally: the response cache {self.path} cannot be rebuilt ({again}); it stays off"
            )
            self._db = None
