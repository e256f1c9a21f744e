"""`client.cache`: the on-disk response cache's controls and counters (issue 19, after Sift's `client.cache`).

It keeps validated GET answers (their body and `ETag`) in one SQLite file, by default in the platform's user
cache directory (`platformdirs.user_cache_dir("tally")`). What is served from it, and when, is decided in
`tally._cache_policy`; the client's core (`_async/_client.py`) sends the requests; the file itself, its format and
its recovery from damage are `tally._cache_file`, loaded on `enable()` only.

Entries are keyed by a namespace (a hash of the base URL and the API key: never the key itself) and the request
URL, so two servers or two keys never share an entry. `bytes`, `entries` and the size cap count the whole file.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tally._cache_file import CacheFile, Entry
    from tally._cache_stats import CacheStats

__all__ = ["DEFAULT_MAX_BYTES", "ResponseCache"]

logger = logging.getLogger("tally")

_MAX_WALKS = 1024

DEFAULT_MAX_BYTES = 1 << 30
"""1 GiB: the points of a 1,000,000-point experiment are about 100 MB of JSON."""


def default_path() -> Path:
    """`responses.sqlite3` in the user cache directory (`platformdirs.user_cache_dir("tally")`)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("tally", appauthor=False)) / "responses.sqlite3"


class ResponseCache:
    """`client.cache`: off until `enable()`. Shared by a client and its `with_options` copies; thread-safe.

    Off by default: turned on, it writes the answers (your experiments' data) to your disk, in a file that
    outlives the process and grows to `max_bytes`; that is your choice to make, not a side effect of a read.
    """

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self._seed = (base_url, api_key)  # hashed into the namespace on enable(); never written
        self._namespace = ""
        self._lock = threading.Lock()
        self._file: CacheFile | None = None
        self._max_bytes = DEFAULT_MAX_BYTES
        self._hits = self._misses = self._revalidated = 0
        self._warned: set[str] = set()
        # (path, cursor) -> the guard of the walk that cursor continues (`tally._cache_policy`, "walks").
        self._walks: dict[tuple[str, str], tuple[str | None]] = {}

    def enable(self, path: str | os.PathLike[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """Keep validated GET answers in the SQLite file `path` (default: `responses.sqlite3` in the user
        cache directory, `platformdirs.user_cache_dir("tally")`), at most `max_bytes` of bodies (the least
        recently used go first). Enabling again switches to the new path or cap. A file that cannot be used
        leaves the cache off, with a warning; a damaged one is rebuilt, with a warning."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive number of bytes, not {max_bytes!r}")
        from tally._cache_file import CacheFile, Unusable, namespace_of

        target = Path(path) if path is not None else default_path()
        with self._lock:
            self._close()
            self._namespace = namespace_of(*self._seed)
            self._max_bytes = max_bytes
            try:
                self._file = CacheFile(target, max_bytes, self._warn)
            except (Unusable, OSError) as exc:
                self._warn("open", f"tally: not using {target} as the response cache ({exc}); it stays off")

    def disable(self) -> None:
        """Stop using the cache (the file stays: `clear()` first to empty it)."""
        with self._lock:
            self._close()

    def clear(self) -> None:
        """Delete every entry of the file (of every server and key); the cache stays on if it was."""
        with self._lock:
            if self._file is not None:
                self._file.clear()

    def stats(self) -> CacheStats:
        """Hits, misses, revalidations (since the client was made) and the file's bytes and entries now."""
        from tally._cache_stats import CacheStats

        with self._lock:
            file = self._file
            size, count = file.totals() if file is not None else (0, 0)
            return CacheStats(
                enabled=file is not None,
                path=str(file.path) if file is not None else None,
                hits=self._hits,
                misses=self._misses,
                revalidated=self._revalidated,
                bytes=size,
                entries=count,
                max_bytes=self._max_bytes,
            )

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        """Close the file (the client's `close()` calls it): the same as `disable()`."""
        self.disable()

    def __repr__(self) -> str:
        file = self._file
        return f"<tally cache path={str(file.path)!r}>" if file is not None else "<tally cache disabled>"

    # ---- what the client's core calls -------------------------------------------------------------------------

    def get(self, url: str) -> Entry | None:
        """The stored answer of `url` (marked as just used), or None."""
        with self._lock:
            return self._file.get(self._key(url)) if self._file is not None else None

    def put(self, url: str, etag: str, body: bytes, guard: str | None) -> None:
        """Store (or replace) the answer of `url`; the least recently used go beyond `max_bytes`."""
        with self._lock:
            if self._file is not None:
                self._file.put(self._key(url), etag, body, guard)

    def set_guard(self, url: str, entry: Entry, guard: str | None) -> None:
        """Re-store `entry` under another guard (after a 304 proved it current)."""
        if guard != entry.guard:
            self.put(url, entry.etag, entry.body, guard)

    def walk_guard(self, path: str, cursor: str | None) -> tuple[str | None] | None:
        """The guard under which the page before `cursor` was read, as a 1-tuple (once: it is forgotten), or
        None when `cursor` continues no walk this client made through the cache."""
        if cursor is None:
            return None
        with self._lock:
            return self._walks.pop((path, cursor), None)

    def continue_walk(self, path: str, body: bytes, guard: str | None) -> None:
        """Remember `guard` for the page after this one (when `body` is a page with a `next_cursor`)."""
        from tally._cache_policy import next_cursor_of

        cursor = next_cursor_of(body)
        if cursor is None:
            return
        with self._lock:
            walks = self._walks
            walks[(path, cursor)] = (guard,)
            if len(walks) > _MAX_WALKS:  # walks abandoned midway: forget the oldest
                del walks[next(iter(walks))]

    def count(self, *, hit: bool, revalidated: bool = False) -> None:
        with self._lock:
            if hit:
                self._hits += 1
                self._revalidated += revalidated
            else:
                self._misses += 1

    def _key(self, url: str) -> str:
        return f"{self._namespace} {url}"

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _warn(self, kind: str, message: str) -> None:
        """Log, and warn (a `RuntimeWarning`) once per kind per client, so a broken disk does not flood."""
        logger.warning("%s", message)
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, RuntimeWarning, stacklevel=5)
