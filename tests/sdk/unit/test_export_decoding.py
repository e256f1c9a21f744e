"""The export decoders (pure): however the body is cut into chunks, the same points and rows come out, none lost
at a chunk boundary, and a line without its final line end is still read."""

from __future__ import annotations

import pytest

from tally import MetricPoint
from tally._export import LineBuffer, PointDecoder, RowDecoder, media_type

NDJSON = (
    b'{"name":"loss","value":0.5,"step":0,"timestamp":"2026-11-23T10:00:00Z","metadata":{"k":"v"},'
    b'"client_event_id":"a"}\n'
    b'{"name":"lo\xc3\xa9","value":1e-3,"step":null,"timestamp":"2026-11-23T10:00:01Z","metadata":{},'
    b'"client_event_id":"b"}\n'
)
CSV = (
    "name,value,step,timestamp,metadata,client_event_id\r\n"
    'lo\u00e9,0.5,0,2026-11-23T10:00:00Z,"{""k"":""a, b""}",a\r\n'
    "loss,0.001,,2026-11-23T10:00:01Z,{},b\r\n"
).encode()


def _cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50, 10_000])
def test_points_survive_any_chunking(size: int) -> None:
    decoder = PointDecoder()
    points = [p for chunk in _cut(NDJSON, size) for p in decoder.feed(chunk)] + decoder.finish()
    assert [p.name for p in points] == ["loss", "loé"]
    assert points[1].step is None
    assert all(isinstance(p, MetricPoint) for p in points)


@pytest.mark.parametrize("size", [1, 2, 5, 64, 10_000])
def test_rows_survive_any_chunking(size: int) -> None:
    decoder = RowDecoder()
    rows = [r for chunk in _cut(CSV, size) for r in decoder.feed(chunk)] + decoder.finish()
    assert rows == [
        {"name": "loé", "value": "0.5", "step": "0", "timestamp": "2026-11-23T10:00:00Z",
         "metadata": '{"k":"a, b"}', "client_event_id": "a"},
        {"name": "loss", "value": "0.001", "step": "", "timestamp": "2026-11-23T10:00:01Z",
         "metadata": "{}", "client_event_id": "b"},
    ]  # fmt: skip


def test_a_last_line_without_its_line_end_is_kept() -> None:
    lines = LineBuffer()
    assert lines.feed(b"a\nb") == b"a\n"
    assert lines.finish() == b"b"
    decoder = PointDecoder()
    assert decoder.feed(NDJSON.rstrip(b"\n")) != []
    assert [p.client_event_id for p in decoder.finish()] == ["b"]


def test_an_unknown_format_names_the_choices() -> None:
    assert media_type("csv") == "text/csv"
    with pytest.raises(ValueError, match="format must be 'ndjson' or 'csv', not 'xml'"):
        media_type("xml")
