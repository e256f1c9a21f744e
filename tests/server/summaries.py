"""Metric summaries computed from the points a server lists (the stored truth), to compare with what
getExperimentSummary answers: tests/server/test_summaries.py, the multi-process and the upgrade tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["expected_summary", "stored_points", "summary"]


def expected_summary(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summaries of stored points, listed in the server's order (name, step, then ingestion): `last` is the
    value at the highest step, of several there (or of step-less points only) the one ingested last."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for point in points:  # per name, ascending (step with None first, ingestion order)
        labels = json.dumps(point["metadata"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        group = groups.setdefault((point["name"], labels), {"points": []})
        group["points"].append(point)
    found = []
    for (name, _), group in sorted(groups.items()):
        ps = group["points"]
        steps = [p["step"] for p in ps if p["step"] is not None]
        found.append(
            {
                "name": name,
                "metadata": ps[0]["metadata"],
                "count": len(ps),
                "first_step": min(steps) if steps else None,
                "last_step": max(steps) if steps else None,
                "last": ps[-1]["value"],  # the listing's order puts the winner last
                "min": min(p["value"] for p in ps),
                "max": max(p["value"] for p in ps),
                "last_logged_at": max(ps, key=lambda p: p["timestamp"])["timestamp"],
            }
        )
    return found


def stored_points(client: httpx.Client, experiment_id: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"page_size": 1000, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/v1/experiments/{experiment_id}/metrics", params=query).json()
        points += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return points


def summary(client: httpx.Client, experiment_id: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/v1/experiments/{experiment_id}/summary", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["experiment_id"] == experiment_id
    return list(body["metrics"])
