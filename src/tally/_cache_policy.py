"""What the response cache serves, and when: pure decisions, no I/O (the client's core sends the requests).

The rule:
- Every cacheable GET (one sent with the client's org key, not captured by `with_raw_response`, without the
  caller's own `If-None-Match`) is revalidated: it goes out with `If-None-Match: <stored ETag>`, and a 304 is
  answered from the stored body. That is always right (the server compares a hash of the body it would send);
  it saves the body's transfer, not the server's read.
- The reads that cannot change while their experiment stays terminal (its points, `listMetrics`; its series,
  `getMetricSeries`; its summary, `getExperimentSummary`) are served without asking for them, after one small
  revalidated `getExperiment`, when the experiment's `ETag` is the one the answer was stored under (its guard).
  Why that is safe: the server refuses points to an experiment in `completed`, `failed` or `cancelled`, and
  those three reads depend on its points alone; anything that could change them first changes the experiment
  (a reopen, issue 21, sets `status` and `updated_at`, microseconds; a delete makes it 404), and so its ETag.
  The experiment is checked *before* the data is fetched, so an answer is never stored under a guard older than
  the state it was read in: at worst under a newer one, which only costs a revalidation.
  The guard check itself is a request: a revoked key or a deleted experiment is seen at once, never served.
- Walks: the pages of one `metrics.list` walk are read as of its first page. The first page's request checks
  the experiment; each later page (asked for with the `next_cursor` of a page this client read through the
  cache) reuses that check instead of repeating it, so a walk of a terminal experiment costs one small request
  in all, and a walk of a running one one revalidation per page. A walk that started before a reopen may so
  finish from the cache with the points it started with: the same view it would have had from its first page.
  Every new walk, series or summary call checks again.
- `compareMetrics` (a POST over several experiments) is not cached: it would need a guard per experiment.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import msgspec

if TYPE_CHECKING:
    from tally._cache_file import Entry

__all__ = ["TERMINAL", "cached_response", "experiment_guard", "frozen_experiment", "next_cursor_of"]

TERMINAL = frozenset({"completed", "failed", "cancelled"})

_FROZEN = re.compile(r"/v1/experiments/([^/]+)/(?:metrics|metrics/series|summary)$")


class _Status(msgspec.Struct):
    status: str | None = None


_status = msgspec.json.Decoder(_Status)


class _Page(msgspec.Struct):
    next_cursor: str | None = None


_page = msgspec.json.Decoder(_Page)


def next_cursor_of(body: bytes) -> str | None:
    """The `next_cursor` of a page (None for the last page, or a body that is not a page). The server writes it
    last, so the tail is read first; any other layout is decoded whole."""
    at = body.rfind(b'"next_cursor":', max(0, len(body) - 1024))
    if at > 0 and body[at - 1 : at] == b",":
        try:
            return _page.decode(b"{" + body[at:]).next_cursor
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
    try:
        return _page.decode(body).next_cursor
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def frozen_experiment(path: str) -> str | None:
    """The path of the experiment (`.../v1/experiments/<id>`) when `path` is a read that cannot change while
    that experiment is terminal; else None."""
    match = _FROZEN.search(path)
    return path[: match.start()] + f"/v1/experiments/{match.group(1)}" if match else None


def cached_response(
    request: httpx.Request, entry: Entry, not_modified: httpx.Response | None
) -> httpx.Response:
    """The 200 that `entry` stands for, as the core decodes it; with the 304's request id when there was one."""
    headers = [("content-type", "application/json"), ("etag", entry.etag)]
    if not_modified is not None:
        headers += [(k, v) for k, v in not_modified.headers.multi_items() if k.lower() == "x-request-id"]
    return httpx.Response(200, headers=headers, content=entry.body, request=request)


def experiment_guard(body: bytes, etag: str | None) -> str | None:
    """The guard for reads of an experiment answered by `body` (a `getExperiment` 200): its ETag when the
    experiment is terminal, else None (its reads are then revalidated like any other)."""
    if etag is None:
        return None
    try:
        status = _status.decode(body).status
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return etag if status in TERMINAL else None
