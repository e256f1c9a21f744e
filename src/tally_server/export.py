"""`exportMetrics`' body: every point of an experiment, encoded chunk by chunk as NDJSON or CSV.

The points are walked by the same keyset as `listMetrics` (name, step, ingestion sequence) in chunks of
`CHUNK_ROWS`, each chunk one statement of its own (`Repository.list_metrics`), so the server holds one chunk and
never a long transaction (SQLite's checkpoints and PostgreSQL's vacuum are not held back by a slow reader).
Consistency, as a page walk: every point present when the export starts appears exactly once and in order (the
keyset only moves forward); a point ingested meanwhile appears if its key sorts after the walk's position, else
not; none appears twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import msgspec

from tally_server.storage.repository import Key, Page, Repository

__all__ = ["CHUNK_ROWS", "CSV", "CSV_COLUMNS", "NDJSON", "export_chunks"]

NDJSON = "application/x-ndjson"
CSV = "text/csv"
CHUNK_ROWS = 5000
CSV_COLUMNS = ("name", "value", "step", "timestamp", "metadata", "client_event_id")

_lines = msgspec.json.Encoder()


def _ndjson(items: list[Any]) -> bytes:
    return _lines.encode_lines(items)


def _csv(items: list[Any], header: bool) -> bytes:
    """RFC 4180 rows (CRLF); `step` empty for a point without one, `metadata` its JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(
        (
            item["name"],
            repr(item["value"]),
            "" if item["step"] is None else item["step"],
            item["timestamp"],
            bytes(item["metadata"]).decode(),
            item["client_event_id"],
        )
        for item in items
    )
    return buffer.getvalue().encode()


def export_chunks(
    repo: Repository, org_pk: int, experiment_id: str, filters: dict[str, Any], media_type: str, first: Page
) -> Iterator[bytes]:
    """The encoded export, a chunk at a time, from its `first` page (read by the handler, so that a missing
    experiment is still a 404 before the answer starts) to the last."""
    page: Page | None = first
    header = media_type == CSV
    while page is not None:
        if page.items or header:
            yield _csv(page.items, header) if media_type == CSV else _ndjson(page.items)
            header = False
        after: Key | None = page.next_key
        page = None if after is None else repo.list_metrics(org_pk, experiment_id, filters, CHUNK_ROWS, after)
