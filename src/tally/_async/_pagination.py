"""The paginator every async `list()` returns: lazy, `async for` over items, `.pages()` over pages.

The walk itself (what to ask for next, the resume cursor, `limit`) is `tally._pagination.PageWalk`; this class
only fetches. See `tally._pagination` for exactly what `next_cursor` means.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from tally._pagination import PageWalk
from tally._request_ids import remember, request_id
from tally._types import Page

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["AsyncPaginator"]

T = TypeVar("T")

FetchPage = Callable[[int | None, str | None], Awaitable[Page[T]]]


class AsyncPaginator(Generic[T]):
    """A lazy walk over a list endpoint. Nothing is fetched until you iterate.

    - `async for item in paginator`: every item, across pages, up to `limit`.
    - `async for page in paginator.pages()`: the pages themselves (`page.data`, `page.next_cursor`).
    - `paginator.next_cursor`: pass it as `cursor=` to a new `list()` call to resume after what was consumed.
    """

    def __init__(
        self, fetch: FetchPage[T], *, limit: int | None, page_size: int | None, cursor: str | None
    ) -> None:
        self._fetch = fetch
        self._walk = PageWalk(limit=limit, page_size=page_size, cursor=cursor)
        self._last: Page[T] | None = None

    @property
    def next_cursor(self) -> str | None:
        """The cursor to resume from: the start cursor before any fetch, then each page's `next_cursor`
        (None once the last page was fetched)."""
        return self._walk.cursor

    @property
    def has_more(self) -> bool:
        """True while another page may exist."""
        return self._walk.has_more

    @property
    def request_id(self) -> str | None:
        """The `X-Request-Id` of the last page fetched (None before the first); each page has its own as
        `tally.request_id(page)`."""
        return None if self._last is None else request_id(self._last)

    async def pages(self) -> AsyncIterator[Page[T]]:
        """Fetch and yield one page at a time."""
        while (page := await self._next_page()) is not None:
            yield page

    async def first_page(self) -> Page[T]:
        """Fetch the next page (the first, on a new paginator) and return it; iteration continues after it."""
        page = await self._next_page()
        return Page(data=(), next_cursor=None) if page is None else page

    async def _next_page(self) -> Page[T] | None:
        request = self._walk.next_request()
        if request is None:
            return None
        page = await self._fetch(*request)
        self._last = page
        accepted = self._walk.accept(page)
        if accepted is not page:  # cut to the limit: a new object, with the same request id
            remember(accepted, request_id(page))
        return accepted

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item

    # ---- DataFrames (tally._frames); pandas and polars are imported only here, when asked for -------------
    async def to_pandas(self) -> pd.DataFrame:
        """Every item still to come (up to `limit`) as a pandas DataFrame: metric points one row each with
        `metadata.<key>` columns, other types one column per field. Needs the `[pandas]` extra."""
        from tally._frames import items_to_pandas

        return items_to_pandas([item async for item in self])

    async def to_polars(self) -> pl.DataFrame:
        """`to_pandas`, as a polars DataFrame. Needs the `[polars]` extra."""
        from tally._frames import items_to_polars

        return items_to_polars([item async for item in self])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(next_cursor={self.next_cursor!r}, has_more={self.has_more})"
