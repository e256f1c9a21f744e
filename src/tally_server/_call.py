"""What a handler receives and returns."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tally_server._spec import Operation
from tally_server.pagination import encode_cursor
from tally_server.storage.repository import Page, Principal, Repository

if TYPE_CHECKING:
    from tally_server.contents import Staged

__all__ = ["Call", "Handler", "Reply", "Stream", "page_reply"]


@dataclass(slots=True)
class Call:
    """One validated request: the operation, who made it, its parameters and body."""

    operation: Operation
    repo: Repository
    principal: Principal | None
    path: dict[str, Any]
    query: dict[str, Any]
    body: Any
    request_id: str
    media_type: str | None = None  # the negotiated answer type, for an operation that offers several
    headers: Mapping[str, str] = field(
        default_factory=dict
    )  # the request's (a download reads Range from them)
    upload: Staged | None = None  # uploadArtifact's body, streamed to disk and checked by the route

    @property
    def org_pk(self) -> int:
        assert self.principal is not None, "an authenticated operation"
        return self.principal.org_pk


@dataclass(slots=True)
class Stream:
    """An answer sent as it is produced (a `Reply`'s body): its chunks, pulled one at a time in a worker thread,
    each once the one before it has been handed to the connection, so the server holds one chunk, never the whole
    answer."""

    chunks: Iterator[bytes]
    media_type: str


@dataclass(slots=True)
class Reply:
    """A JSON answer (the body is encoded later), or a `Stream`."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Reply]


def page_reply(kind: str, page: Page) -> Reply:
    return Reply(200, {"data": page.items, "next_cursor": encode_cursor(kind, page.next_key)})
