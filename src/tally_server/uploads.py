"""A streamed request body (`uploadArtifact`) to a temporary file of the `ContentStore`, hashed as it arrives.

The body is never held whole: chunks are gathered up to `FLUSH_BYTES` and written (and hashed) in a worker thread,
while the event loop reads the next ones; uvicorn stops reading the socket while the application does not take
what arrived, so the server holds at most a few MiB per upload whatever its size. Over the store's cap it is 413:
from `Content-Length` before anything is read, else as soon as the cap is passed. A body whose sha256 is not the
one the client sent is 422 `checksum_mismatch`. Whatever goes wrong, the temporary file is removed.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request

from tally_server._spec import FieldError
from tally_server.contents import ContentStore, Staged
from tally_server.errors import ApiError, invalid_request

__all__ = ["FLUSH_BYTES", "check_sha256", "receive_upload", "too_large"]

FLUSH_BYTES = 1024 * 1024
OCTET_STREAM = "application/octet-stream"


def too_large(limit: int, size: int | None = None) -> ApiError:
    shown = f"; this one is {size}" if size is not None else ""
    return ApiError(
        413,
        "payload_too_large",
        f"An artifact holds at most {limit} bytes{shown}.",
        {"max_bytes": limit},
    )


async def receive_upload(request: Request, store: ContentStore) -> Staged:
    """The whole body, on disk, fsynced; `ApiError` 413 over the cap (the temporary file then removed)."""
    limit = store.max_bytes
    declared = request.headers.get("content-length")
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != OCTET_STREAM:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"The body is the file: send Content-Type: {OCTET_STREAM} (got {media or 'none'}).",
            {"content_type": media or None, "expected": OCTET_STREAM},
        )
    if declared is None and "transfer-encoding" not in request.headers:
        raise invalid_request(
            [
                FieldError(
                    "(body)", "is required: send the file's bytes (with Content-Length: 0 for an empty file)"
                )
            ]
        )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, int(declared))
    staged = await anyio.to_thread.run_sync(store.stage)
    try:
        pending: list[bytes] = []
        pending_bytes = size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            if chunk:
                pending.append(chunk)
                pending_bytes += len(chunk)
            if pending_bytes >= FLUSH_BYTES:
                batch, pending, pending_bytes = pending, [], 0
                await anyio.to_thread.run_sync(staged.write, batch)
        await anyio.to_thread.run_sync(staged.write, pending)
        await anyio.to_thread.run_sync(staged.finish)
    except BaseException:
        await anyio.to_thread.run_sync(staged.discard)
        raise
    return staged


def check_sha256(staged: Staged, expected: str) -> None:
    """422 `checksum_mismatch` when the body that arrived is not the one the client hashed."""
    if staged.sha256 != expected:
        raise ApiError(
            422,
            "checksum_mismatch",
            "The body's sha256 is not the sha256 sent (the file changed while it was read, or was damaged on the "
            "way); nothing was stored. Upload it again.",
            {"expected": expected, "received": staged.sha256, "size_bytes": staged.size},
        )
