"""Break the reference cycle httpx puts in every response, so a response is freed when its caller drops it.

`httpx.Client.send` wraps each response's stream in a `BoundSyncStream` (`BoundAsyncStream`) that points back at
the response, to set `response.elapsed` when the stream closes: a cycle (encode/httpx#3733, open). Only the
cyclic garbage collector frees it, and until it runs, the response keeps its request alive, and the request its
body. A run's sender sends a 1.4 MB batch every few tens of milliseconds: while it drained a backlog, four to seven
batches waited for the collector, and the training process grew by 20 MiB instead of 8 (`make bench`).

Once `send` has read and closed the response (every call but a streamed one), `elapsed` is set and the bound
stream has done its work: it is replaced by a stream over the content already read, which refers to nothing.
"""

from __future__ import annotations

import httpx

__all__ = ["release"]


def release(response: httpx.Response) -> httpx.Response:
    """`response`, with its bound stream replaced when it is read and closed (see the module's docstring)."""
    if response.is_closed and response.is_stream_consumed:
        response.stream = httpx.ByteStream(response.content)
    return response
