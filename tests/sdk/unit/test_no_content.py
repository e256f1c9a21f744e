"""`decode(None, response)`: how a method calls an operation that answers 204 No Content (deleteAnnotation)."""

from __future__ import annotations

import httpx
import pytest

import tally
from tally._base import decode


def _response(status: int, content: bytes = b"") -> httpx.Response:
    request = httpx.Request("DELETE", "http://127.0.0.1:1/v1/experiments/e/annotations/a")
    return httpx.Response(status, content=content, request=request, headers={"X-Request-Id": "req_1"})


def test_a_2xx_without_a_decoder_is_none_and_its_body_is_not_parsed() -> None:
    assert decode(None, _response(204)) is None
    assert decode(None, _response(200, b"not json")) is None


def test_an_error_without_a_decoder_still_raises_the_mapped_exception() -> None:
    body = b'{"error": {"code": "not_found", "message": "No annotation a.", "request_id": "req_1", "details": null}}'
    with pytest.raises(tally.NotFoundError) as caught:
        decode(None, _response(404, body))
    assert (caught.value.code, caught.value.request_id) == ("not_found", "req_1")
