"""getExperimentSummary: the per (metric, label set) summaries kept at ingest, exact after mixed batches,
duplicates, conflicts and step-less points, on both backends; compared with a summary computed here from the
points the server lists (the stored truth), so the two ways can never drift."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from .helpers import assert_error, event
from .summaries import expected_summary, stored_points, summary

NewExperiment = Callable[..., dict[str, Any]]
IngestClient = Callable[[str], httpx.Client]


def test_summaries_are_exact_after_mixed_batches_duplicates_and_conflicts(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    path = f"/v1/experiments/{experiment_id}/metrics"
    assert summary(client, experiment_id) == []
    train = {"split": "train"}
    first = [
        event("a0", value=3.0, step=5, metadata=train, timestamp="2026-01-01T00:00:05Z"),
        event("a1", value=1.0, step=2, metadata=train, timestamp="2026-01-01T00:00:09Z"),
        event("a2", value=7.0, step=9, metadata={"split": "val"}),
        event("a3", value=-2.0, step=None),  # step-less, no labels
        event("a4", value=4.0, step=None),  # step-less, ingested later: the last of its set
        event("a5", value=0.25, name="lr", step=0),
    ]
    assert ingest.post(path, json={"events": first}).json()["accepted"] == 6
    before = summary(client, experiment_id)
    assert [(m["name"], m["metadata"], m["count"]) for m in before] == [
        ("lr", {}, 1),
        ("train/loss", {"split": "train"}, 2),  # by metadata as compact JSON with sorted keys: '"' < '}'
        ("train/loss", {"split": "val"}, 1),
        ("train/loss", {}, 2),
    ]
    no_step = before[3]
    assert (no_step["first_step"], no_step["last_step"], no_step["last"]) == (None, None, 4.0)
    assert (no_step["min"], no_step["max"]) == (-2.0, 4.0)
    labelled = before[1]
    assert (labelled["first_step"], labelled["last_step"], labelled["last"]) == (2, 5, 3.0)
    assert labelled["last_logged_at"] == "2026-01-01T00:00:09Z"
    # Duplicates and conflicts change nothing.
    again = [first[0], {**first[1], "value": 100.0}, {**first[3], "value": -50.0}]
    result = ingest.post(path, json={"events": again}).json()
    assert (result["accepted"], result["duplicates"], len(result["conflicts"])) == (0, 1, 2)
    assert summary(client, experiment_id) == before
    # A second batch: a tie at the highest step (the later point wins), a stepped point after step-less ones
    # (a step always wins over none), a new low and a new high, mixed with a duplicate and a conflict.
    second = [
        first[2],
        {**first[0], "value": 55.0},
        event("b0", value=8.0, step=5, metadata=train),
        event("b1", value=-9.0, step=1, metadata=train),
        event("b2", value=1.5, step=3),
        event("b3", value=6.0, step=9, metadata={"split": "val"}),
        event("b4", value=9.5, step=4, metadata={"split": "val"}),
    ]
    result = ingest.post(path, json={"events": second}).json()
    assert (result["accepted"], result["duplicates"], len(result["conflicts"])) == (5, 1, 1)
    after = summary(client, experiment_id)
    assert after == expected_summary(stored_points(client, experiment_id))
    by_labels = {json.dumps(m["metadata"]) + m["name"]: m for m in after}
    assert by_labels['{"split": "train"}train/loss']["last"] == 8.0
    assert by_labels['{"split": "train"}train/loss']["first_step"] == 1
    assert by_labels['{"split": "val"}train/loss']["last"] == 6.0
    assert by_labels["{}train/loss"]["last"] == 1.5
    assert by_labels["{}train/loss"]["first_step"] == by_labels["{}train/loss"]["last_step"] == 3
    # Filtered by name.
    assert summary(client, experiment_id, name="lr") == after[:1]
    assert summary(client, experiment_id, name="nothing") == []


def test_summaries_merge_many_batches_and_label_sets(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    """Batches that overlap in steps and label sets, out of step order: the stored summary is the one computed
    from every point at once."""
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    path = f"/v1/experiments/{experiment_id}/metrics"
    for batch in range(4):
        events = [
            event(
                f"{batch}-{i}",
                name=("loss", "acc")[i % 2],
                value=((i * 37 + batch * 11) % 23) / 3,
                step=None if i % 7 == 0 else (i * 13 + batch * 5) % 17,
                metadata={"host": f"h{i % 3}", "split": ("train", "val")[batch % 2]},
                timestamp=f"2026-01-01T00:{(i * 7 + batch) % 60:02d}:00Z",
            )
            for i in range(30)
        ]
        ingest.post(path, json={"events": events}).raise_for_status()
    found = summary(client, experiment_id)
    assert len(found) == 2 * 3 * 2
    assert found == expected_summary(stored_points(client, experiment_id))


def test_a_label_set_written_in_any_key_order_or_spacing_is_one_series(
    client: httpx.Client, new_experiment: NewExperiment, ingest_client: IngestClient
) -> None:
    """The fast path takes label sets as their raw JSON text and works out the stored form once per distinct
    text: differently written texts of one set are one summary, and a repeat written another way is a
    duplicate, not a conflict."""
    experiment_id = new_experiment()["id"]
    ingest = ingest_client(experiment_id)
    path = f"/v1/experiments/{experiment_id}/metrics"
    written = [
        '{"b": "1", "a": "2"}',
        '{"a":"2","b":"1"}',
        '{ "a" : "\\u0032" ,\n "b":"1" }',
        '{"b":"1","a":"2"}',
    ]
    events = [
        f'{{"name": "loss", "value": {i}, "step": {i}, "client_event_id": "e{i}", "metadata": {text}}}'
        for i, text in enumerate(written)
    ]
    headers = {"Content-Type": "application/json"}
    body = '{"events": [' + ", ".join(events) + "]}"
    assert ingest.post(path, content=body, headers=headers).json()["accepted"] == 4
    found = summary(client, experiment_id)
    assert [(m["name"], m["metadata"], m["count"], m["last"]) for m in found] == [
        ("loss", {"a": "2", "b": "1"}, 4, 3.0)
    ]
    again = events[0].replace(written[0], written[2])
    result = ingest.post(path, content='{"events": [' + again + "]}", headers=headers).json()
    assert (result["accepted"], result["duplicates"], result["conflicts"]) == (0, 1, [])
    assert summary(client, experiment_id) == found


def test_summary_of_an_unknown_experiment_is_404(client: httpx.Client) -> None:
    assert_error(client.get("/v1/experiments/exp_nope/summary"), 404, "not_found")
