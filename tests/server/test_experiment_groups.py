"""Experiment groups (contract 1.7.0): an experiment created with `group` keeps it, and `listExperiments?group=`
lists exactly that group's experiments, in creation order, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .helpers import unique


def test_a_group_is_kept_and_listed_on_its_own(
    client: httpx.Client, new_experiment: Callable[..., dict[str, Any]]
) -> None:
    group, other = unique("job"), unique("job")
    ranks = [new_experiment(group=group) for _ in range(3)]
    new_experiment(group=other)
    alone = new_experiment()
    assert alone["group"] is None
    assert [e["group"] for e in ranks] == [group] * 3
    assert client.get(f"/v1/experiments/{ranks[1]['id']}").json()["group"] == group
    listed = client.get("/v1/experiments", params={"group": group}).json()
    assert [e["id"] for e in listed["data"]] == [e["id"] for e in ranks]
    paged = client.get("/v1/experiments", params={"group": group, "page_size": 2}).json()
    rest = client.get("/v1/experiments", params={"group": group, "cursor": paged["next_cursor"]}).json()
    assert [e["id"] for e in paged["data"] + rest["data"]] == [e["id"] for e in ranks]
    # with the other filters: every one must hold
    client.post(f"/v1/experiments/{ranks[0]['id']}/status", json={"status": "completed"})
    running = client.get("/v1/experiments", params={"group": group, "status": "running"}).json()
    assert [e["id"] for e in running["data"]] == [e["id"] for e in ranks[1:]]
    assert client.get("/v1/experiments", params={"group": unique("none")}).json()["data"] == []


def test_a_bad_group_is_refused_naming_the_field(client: httpx.Client) -> None:
    created = client.post("/v1/experiments", json={"name": "x", "group": "job 1"})
    assert created.status_code == 400
    assert "group" in created.text
    listed = client.get("/v1/experiments", params={"group": "a" * 129})
    assert listed.status_code == 400
    assert "group" in listed.text
