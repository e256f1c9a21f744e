"""Helpers for the reference server's tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tally_server import RunningServer

__all__ = ["assert_error", "event", "make_client", "unique"]


def make_client(server: RunningServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60.0)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def event(
    cid: str, name: str = "train/loss", value: float = 0.5, step: int | None = 0, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "value": value, "client_event_id": cid, **extra}
    if step is not None:
        body["step"] = step
    return body


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the error envelope with this status and code, naming its X-Request-Id."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code, error
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert set(error) == {"code", "message", "request_id", "details"}
    return dict(error)
