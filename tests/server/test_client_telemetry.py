"""The SDK's optional `X-Tally-Client-Telemetry` header as the server reads it for its DEBUG log: the documented
shape gives its figures, anything else nothing (never an error). The live path:
tests/sdk/integration/test_telemetry.py."""

from __future__ import annotations

import pytest

from tally_server._client_telemetry import MAX_BYTES, read_client_telemetry


def test_the_documented_shape_gives_its_figures() -> None:
    value = b'{"last_request_metrics": {"request_id": "req_0123abcd", "request_duration_ms": 12}}'
    assert read_client_telemetry(value) == ("req_0123abcd", 12)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"{",
        b"[]",
        b'{"last_request_metrics": 1}',
        b'{"last_request_metrics": {"request_id": "req_1"}}',
        b'{"last_request_metrics": {"request_id": "a b", "request_duration_ms": 1}}',
        b'{"last_request_metrics": {"request_id": "req_1", "request_duration_ms": -1}}',
        b'{"last_request_metrics": {"request_id": "req_1", "request_duration_ms": 1.5}}',
        b'{"last_request_metrics": {"request_id": "' + b"r" * MAX_BYTES + b'", "request_duration_ms": 1}}',
        b"\xff\xfe",
    ],
)
def test_anything_else_is_ignored(value: bytes) -> None:
    assert read_client_telemetry(value) is None
