"""The routes: one Starlette route per path of the contract, each handing its operations to the pipeline.

An endpoint does only what needs the ASGI request: 405 with `Allow` for a method the path lacks, 415 for a body
that is not declared JSON, 413 for a body over the contract's byte cap (refused before it is read whole), 499 /
408 when the client went away while sending. The rest runs in `Pipeline.run`, in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tally_server._call import Stream
from tally_server._http import TIMED_OUT_SCOPE_KEY
from tally_server._json import error_body
from tally_server._limits import MAX_BODY_BYTES
from tally_server._spec import Operation, Spec
from tally_server.errors import ApiError, payload_too_large
from tally_server.middleware import JSON, OPERATION_SCOPE_KEY, request_id
from tally_server.pipeline import Incoming, Pipeline
from tally_server.uploads import check_sha256, receive_upload

__all__ = ["json_response", "not_found", "routes"]


def routes(spec: Spec, pipeline: Pipeline) -> list[Route]:
    """A route per path of `spec`; every method reaches its endpoint, which answers 405 for those the path lacks."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in spec.operations:
        by_path.setdefault(op.path, {})[op.method] = op
    found = []
    for path, ops in by_path.items():
        route = Route(path, _endpoint(pipeline, ops))
        route.methods = None
        found.append(route)
    return found


async def not_found(request: Request, exc: Exception) -> Response:
    """404 in the envelope for a path the contract does not have."""
    error = ApiError(404, "not_found", f"No route {request.method} {request.url.path}.")
    return json_response(404, error_body(error, request_id(request.scope)))


def json_response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
    if status in (204, 304):  # no body, so no Content-Type either
        return Response(status_code=status, headers=dict(headers or {}))
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes before reading it all."""
    too_large = payload_too_large(f"A request body holds at most {limit} bytes.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _check_json_content_type(value: str | None, *, declared_body: bool) -> None:
    """415 `unsupported_media_type` unless a body is declared as JSON (`application/json`, or `+json`).

    Called before the body is read (`declared_body`: only a Content-Type that is present and not JSON is refused,
    so nothing is read in vain) and again once a non-empty body has arrived (then a missing one is refused too).
    """
    if value is None and declared_body:
        return
    media = (value or "").split(";", 1)[0].strip().lower()
    if media == JSON or (media.startswith("application/") and media.endswith("+json")):
        return
    shown = media or "none"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"The body must be JSON: send Content-Type: application/json (got {shown}).",
        {"content_type": media or None, "expected": JSON},
    )


def _discard(incoming: Incoming) -> None:
    """Remove a streamed body's temporary file (nothing once it was published, or when there is none)."""
    if incoming.upload is not None:
        incoming.upload.discard()


def _endpoint(
    pipeline: Pipeline, operations: dict[str, Operation]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        rid = request_id(request.scope)
        operation = operations.get(request.method)
        request.scope[OPERATION_SCOPE_KEY] = operation  # the log line shows only its query parameters
        if operation is None:  # the path exists, the method does not: 405 with Allow, in the envelope
            error = ApiError(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}."
            )
            allow = {"Allow": ", ".join(sorted(operations))}
            return json_response(405, error_body(error, rid), allow)
        incoming = Incoming(
            operation=operation,
            method=request.method,
            path=request.url.path,
            query_string=request.scope.get("query_string", b"").decode("latin-1"),
            query=request.query_params,
            path_params=request.path_params,
            headers=request.headers,
            body=b"",
            request_id=rid,
        )
        try:
            body = b""
            if operation.streams_body:  # uploadArtifact: checked first, then streamed to disk, never held
                assert pipeline.repo.contents is not None, "create_app attaches a ContentStore"
                query = await anyio.to_thread.run_sync(pipeline.admit, incoming)
                incoming.upload = await receive_upload(request, pipeline.repo.contents)
                check_sha256(incoming.upload, query["sha256"])
            elif operation.body_validator is not None:
                _check_json_content_type(request.headers.get("content-type"), declared_body=True)
                body = await _read_body(request, MAX_BODY_BYTES)
                if body.strip():
                    _check_json_content_type(request.headers.get("content-type"), declared_body=False)
        except ApiError as exc:
            _discard(incoming)
            return json_response(exc.status, error_body(exc, rid), exc.headers)
        except ClientDisconnect:  # nobody to answer; the log line says 408 when the body timed out
            _discard(incoming)
            return Response(status_code=408 if request.scope.get(TIMED_OUT_SCOPE_KEY) else 499)
        incoming.body = body
        try:
            out = await anyio.to_thread.run_sync(pipeline.run, incoming)
        finally:
            _discard(incoming)  # published by the handler, or not wanted any more
        if isinstance(
            out.body, Stream
        ):  # Starlette pulls each chunk in a worker thread as the last one is sent
            stream = out.body
            return StreamingResponse(
                stream.chunks, status_code=out.status, headers=out.headers, media_type=stream.media_type
            )
        return json_response(out.status, out.body, out.headers)

    return endpoint
