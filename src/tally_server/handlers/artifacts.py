"""Artifacts: upload (its body already streamed to disk and checked by the route, `tally_server.uploads`), list,
get, download (streamed from the file, one byte range at most) and delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from tally_server._call import Call, Handler, Reply, Stream, page_reply
from tally_server.conditional import matches
from tally_server.errors import ApiError
from tally_server.pagination import decode_cursor
from tally_server.ranges import Unsatisfiable, byte_range

__all__ = ["CHUNK_BYTES", "HANDLERS", "OCTET_STREAM"]

OCTET_STREAM = "application/octet-stream"
CHUNK_BYTES = 1024 * 1024  # what a download holds in memory at once (and one worker-thread hop each)


def upload_artifact(call: Call) -> Reply:
    staged = call.upload
    if staged is None:  # pragma: no cover - the route streams every uploadArtifact body to disk first
        raise RuntimeError("uploadArtifact without a staged body")
    artifact = call.repo.create_artifact(call.org_pk, call.path["experiment_id"], call.query["name"], staged)
    return Reply(201, artifact)


def list_artifacts(call: Call) -> Reply:
    after = decode_cursor("artifacts", call.query.get("cursor"))
    page = call.repo.list_artifacts(call.org_pk, call.path["experiment_id"], call.query["page_size"], after)
    return page_reply("artifacts", page)


def get_artifact(call: Call) -> Reply:
    path = call.path
    return Reply(200, call.repo.get_artifact(call.org_pk, path["experiment_id"], path["artifact_id"]))


def delete_artifact(call: Call) -> Reply:
    path = call.path
    call.repo.delete_artifact(call.org_pk, path["experiment_id"], path["artifact_id"])
    return Reply(204, None)


def _chunks(file: IO[bytes], length: int) -> Iterator[bytes]:
    """`length` bytes of `file` from where it stands, a chunk at a time; closes it however the answer ends."""
    with file:
        left = length
        while left > 0:
            data = file.read(min(CHUNK_BYTES, left))
            if not data:
                raise RuntimeError("an artifact's content is shorter than its recorded size")
            left -= len(data)
            yield data


def download_artifact(call: Call) -> Reply:
    """The content, whole (200) or one range of it (206), with its sha256 as the ETag; 304 when If-None-Match
    names it; 416 for a range past the end."""
    path = call.path
    artifact = call.repo.get_artifact(call.org_pk, path["experiment_id"], path["artifact_id"])
    size = int(artifact["size_bytes"])
    headers = {"ETag": f'"{artifact["sha256"]}"', "Accept-Ranges": "bytes"}
    if matches(call.headers.get("if-none-match"), headers["ETag"]):
        return Reply(304, None, headers)
    try:
        wanted = byte_range(call.headers.get("range"), size)
    except Unsatisfiable:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"The range starts past the end of the content ({size} bytes); ask for bytes 0 to {size - 1}.",
            {"size_bytes": size},
            {"Content-Range": f"bytes */{size}"},
        ) from None
    assert call.repo.contents is not None
    try:
        file = call.repo.contents.path_of(artifact["sha256"]).open("rb")
    except FileNotFoundError:
        raise ApiError(
            404, "not_found", f"The content of artifact {artifact['id']} is missing on the server."
        ) from None
    status, first, length = 200, 0, size
    if wanted is not None:
        first, last = wanted
        status, length = 206, last - first + 1
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        file.seek(first)
    headers["Content-Length"] = str(length)
    return Reply(status, Stream(_chunks(file, length), OCTET_STREAM), headers)


HANDLERS: dict[str, Handler] = {
    "uploadArtifact": upload_artifact,
    "listArtifacts": list_artifacts,
    "getArtifact": get_artifact,
    "downloadArtifact": download_artifact,
    "deleteArtifact": delete_artifact,
}
