# Generated from src/tally/_async/_pagination.py by scripts/unasync.py. Do not edit: edit the async file.
"""The paginator every `list()` returns: lazy, `for` over items, `.pages()` over pages.

The walk itself (what to ask for next, the resume cursor, `limit`) is `tally._pagination.PageWalk`; this class
only fetches. See `tally._pagination` for exactly what `next_cursor` means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from tally._pagination import PageWalk
from tally._types import Page

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["Paginator"]

T = TypeVar("T")

FetchPage = Callable[[int | None, str | None], Page[T]]


class Paginator(Generic[T]):
    """A lazy walk over a list endpoint. Nothing is fetched until you iterate.

    - `for item in paginator`: every item, across pages, up to `limit`.
    - `for page in paginator.pages()`: the pages themselves (`page.data`, `page.next_cursor`).
    - `paginator.next_cursor`: pass it as `cursor=` to a new `list()` call to resume after what was consumed.
    """

    def __init__(
        self, fetch: FetchPage[T], *, limit: int | None, page_size: int | None, cursor: str | None
    ) -> None:
        self._fetch = fetch
        self._walk = PageWalk(limit=limit, page_size=page_size, cursor=cursor)

    @property
    def next_cursor(self) -> str | None:
        """The cursor to resume from: the start cursor before any fetch, then each page's `next_cursor`
        (None once the last page was fetched)."""
        return self._walk.cursor

    @property
    def has_more(self) -> bool:
        """True while another page may exist."""
        return self._walk.has_more

    def pages(self) -> Iterator[Page[T]]:
        """Fetch and yield one page at a time."""
        walk = self._walk
        while (request := walk.next_request()) is not None:
            page = self._fetch(*request)
            yield walk.accept(page)

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data

    # ---- DataFrames (tally._frames); pandas and polars are imported only here, when asked for -------------
    def to_pandas(self) -> pd.DataFrame:
        """Every item still to come (up to `limit`) as a pandas DataFrame: metric points one row each with
        `metadata.<key>` columns, other types one column per field. Needs the `[pandas]` extra."""
        from tally._frames import items_to_pandas

        return items_to_pandas([item for item in self])

    def to_polars(self) -> pl.DataFrame:
        """`to_pandas`, as a polars DataFrame. Needs the `[polars]` extra."""
        from tally._frames import items_to_polars

        return items_to_polars([item for item in self])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(next_cursor={self.next_cursor!r}, has_more={self.has_more})"
