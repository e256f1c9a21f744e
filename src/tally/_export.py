"""Decoding a streamed `exportMetrics` answer chunk by chunk, shared by both clients (pure, no I/O).

The body arrives in chunks that cut lines anywhere; `LineBuffer` hands on only complete lines and keeps the rest,
so memory holds one chunk and one partial line, never the export. NDJSON lines become `tally.MetricPoint`s with
msgspec's `decode_lines` (one call per chunk); CSV lines become one dict per row keyed by the header's columns
(every value a string, as CSV has it: `step` empty for a point without one, `metadata` its JSON text).
"""

from __future__ import annotations

import csv
from typing import Final, Literal

import msgspec

from tally._types import MetricPoint

__all__ = [
    "CSV",
    "FORMATS",
    "NDJSON",
    "ExportFormat",
    "LineBuffer",
    "PointDecoder",
    "RowDecoder",
    "media_type",
]

NDJSON: Final = "application/x-ndjson"
CSV: Final = "text/csv"
ExportFormat = Literal["ndjson", "csv"]
FORMATS: Final = {"ndjson": NDJSON, "csv": CSV}


def media_type(format: str) -> str:
    """The `Accept` value of an export format; ValueError naming the choices otherwise."""
    try:
        return FORMATS[format]
    except (KeyError, TypeError):
        raise ValueError(f"format must be 'ndjson' or 'csv', not {format!r}") from None


class LineBuffer:
    """Complete lines out of arbitrary chunks: `feed` returns the whole lines received so far (with their line
    ends), `finish` what is left after the last chunk (a last line without its line end)."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> bytes:
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            self._rest += chunk
            return b""
        complete = self._rest + chunk[:cut] if self._rest else chunk[:cut]
        self._rest = chunk[cut:]
        return complete

    def finish(self) -> bytes:
        rest, self._rest = self._rest, b""
        return rest


_points = msgspec.json.Decoder(MetricPoint)


class PointDecoder:
    """NDJSON chunks to `MetricPoint`s. Raises msgspec's errors for a line that is not one."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines = LineBuffer()

    def feed(self, chunk: bytes) -> list[MetricPoint]:
        complete = self._lines.feed(chunk)
        return _points.decode_lines(complete) if complete else []

    def finish(self) -> list[MetricPoint]:
        rest = self._lines.finish()
        return _points.decode_lines(rest) if rest.strip() else []


class RowDecoder:
    """CSV chunks to one dict a row, keyed by the header line's columns."""

    __slots__ = ("_columns", "_lines")

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._columns: list[str] | None = None

    def feed(self, chunk: bytes) -> list[dict[str, str]]:
        return self._rows(self._lines.feed(chunk))

    def finish(self) -> list[dict[str, str]]:
        return self._rows(self._lines.finish())

    def _rows(self, complete: bytes) -> list[dict[str, str]]:
        if not complete:
            return []
        rows = csv.reader(complete.decode().splitlines())
        if self._columns is None:
            self._columns = next(rows, None)
        columns = self._columns or []
        return [dict(zip(columns, row, strict=False)) for row in rows if row]
