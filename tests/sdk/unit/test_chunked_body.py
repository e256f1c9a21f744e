"""`tally._chunked`: a body built from members as they come, in parts, equal to the joined JSON it stands for."""

from __future__ import annotations

import msgspec
import pytest

from tally._chunked import PART_BYTES, ChunkedBody, JsonArrayBuilder


@pytest.mark.parametrize("count", [0, 1, 2, 700, 5_000])
def test_the_parts_join_into_the_array_and_stay_near_the_part_size(count: int) -> None:
    members = [msgspec.json.encode({"i": i, "pad": "x" * (i % 97)}) for i in range(count)]
    builder = JsonArrayBuilder(b'{"events":[', b"]}")
    for member in members:
        builder.add(member)
    body = builder.finish()
    assert body.join() == b'{"events":[' + b",".join(members) + b"]}"
    assert body.size == len(body.join())
    assert msgspec.json.decode(body.join())["events"] == [msgspec.json.decode(m) for m in members]
    longest = max((len(m) for m in members), default=0) + 1
    assert all(len(part) < PART_BYTES + longest for part in body.parts)
    assert len(body.parts) >= body.size // (PART_BYTES + longest)  # cut, not one copy of the whole body


def test_a_body_can_be_read_again_for_a_retry() -> None:
    body = ChunkedBody([b"ab", b"", b"cd"])
    assert list(body.chunks()) == list(body.chunks()) == [b"ab", b"", b"cd"]
    assert body.size == 4
