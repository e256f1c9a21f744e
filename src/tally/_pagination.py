"""The page walk behind every `list()`: which page to ask for next, and the resume cursor. Pure, no I/O.

The sync and async paginators (`_async/_pagination.py` and its generated twin) drive this with a fetch
function.

Cursor semantics: `next_cursor` is always a page boundary the server gave. With `limit`, the walk asks the
last page for exactly the items still wanted (`page_size = min(page_size, remaining)`), so stopping at the
limit never lands mid-page: resuming with `cursor=next_cursor` continues right after the last item yielded. If
you stop iterating items yourself in the middle of a page, the rest of that page is skipped on resume; walk
`.pages()` when you need exact control.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from tally_api_types import limits as _contract

from tally._types import Page

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MIN_PAGE_SIZE", "PageWalk"]

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
"""The server's default page size (spec: `PageSize`)."""
MIN_PAGE_SIZE = _contract.PAGE_SIZE_MINIMUM
MAX_PAGE_SIZE = _contract.PAGE_SIZE_MAXIMUM
"""The largest page the server gives (the contract's `PageSize`, from `tally_api_types.limits`)."""


@dataclass(slots=True)
class PageWalk:
    """Where a walk over pages stands."""

    limit: int | None = None
    page_size: int | None = None
    cursor: str | None = None
    yielded: int = 0
    done: bool = False
    pages: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be 0 or more, not {self.limit}")
        if self.page_size is not None and not MIN_PAGE_SIZE <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(
                f"page_size must be from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}, not {self.page_size}"
            )

    def next_request(self) -> tuple[int | None, str | None] | None:
        """`(page_size, cursor)` for the next page, or None when the walk is over."""
        if self.done:
            return None
        size = self.page_size
        if self.limit is not None:
            remaining = self.limit - self.yielded
            if remaining <= 0:
                self.done = True
                return None
            size = min(size or DEFAULT_PAGE_SIZE, remaining)
        return size, self.cursor

    def accept(self, page: Page[T]) -> Page[T]:
        """Record a fetched page; returns it, cut to the limit should the server have sent more than asked."""
        self.pages += 1
        if self.limit is not None and len(page.data) > self.limit - self.yielded:
            page = Page(data=page.data[: self.limit - self.yielded], next_cursor=page.next_cursor)
        self.yielded += len(page.data)
        self.cursor = page.next_cursor
        if page.next_cursor is None:
            self.done = True
        return page

    @property
    def has_more(self) -> bool:
        """True while another page may exist: before the first fetch, or when the last had a next cursor."""
        return self.cursor is not None or (self.pages == 0 and not self.done)
