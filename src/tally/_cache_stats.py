"""`CacheStats`: what `client.cache.stats()` reports.

Apart from `tally._cache` only to keep `from tally import Tally` light (issue 21's import target): a dataclass costs
about half a millisecond to create, and this one is made only when someone asks for the counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CacheStats"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What `client.cache.stats()` reports. `hits` are answers served from the cache (`revalidated` of them
    after the server's 304, the rest without asking for the data); `misses` are cacheable GETs that fetched a
    body. Both count since the client was made; `bytes` and `entries` describe the whole file now."""

    enabled: bool
    path: str | None
    hits: int
    misses: int
    revalidated: int
    bytes: int
    entries: int
    max_bytes: int
