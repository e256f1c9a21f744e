"""Deleting through the SDK (contract 1.5.0), against the live reference server, with `Tally` and `AsyncTally`:
experiments.delete (only with confirm=True)."""

from __future__ import annotations

import pytest

import tally

from ..conftest import AnyClient, call, collect, unique

pytestmark = pytest.mark.integration


async def test_delete_experiment_needs_confirm_and_then_everything_is_gone(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("doomed"), tags=["doomed"]))
    await call(client.metrics.ingest(experiment.id, [{"name": "loss", "value": 1.0, "step": 0}]))
    await call(client.annotations.create(experiment.id, "note"))

    for kwargs in ({}, {"confirm": False}, {"confirm": "yes"}):
        with pytest.raises(ValueError, match=r"cannot be undone: pass confirm=True"):
            await call(client.experiments.delete(experiment.id, **kwargs))
    assert (await call(client.experiments.get(experiment.id))).id == experiment.id  # nothing was sent

    assert await call(client.experiments.delete(experiment.id, confirm=True)) is None
    with pytest.raises(tally.NotFoundError):
        await call(client.experiments.get(experiment.id))
    listed = await collect(client.experiments.list(tag="doomed", include_archived=True))
    assert experiment.id not in [e.id for e in listed]
    with pytest.raises(tally.NotFoundError):
        await call(client.experiments.delete(experiment.id, confirm=True))
    # the client's cached ingestion key went with the experiment: an ingest now says the experiment is gone
    with pytest.raises(tally.NotFoundError):
        await call(client.metrics.ingest(experiment.id, [{"name": "loss", "value": 2.0, "step": 1}]))


async def test_delete_folder_only_when_empty(client: AnyClient) -> None:
    folder = await call(client.folders.create(unique("fld")))
    inside = await call(client.experiments.create(unique("inside"), folder_id=folder.id))
    with pytest.raises(tally.ConflictError) as caught:
        await call(client.folders.delete(folder.id))
    assert caught.value.code == "folder_not_empty"
    assert caught.value.details == {"folder_id": folder.id, "experiments": 1, "folders": 0}
    assert "move or delete them first" in str(caught.value)

    await call(client.experiments.move(inside.id, None))
    assert await call(client.folders.delete(folder.id)) is None
    with pytest.raises(tally.NotFoundError):
        await call(client.folders.get(folder.id))
    with pytest.raises(tally.NotFoundError):
        await call(client.folders.delete(folder.id))
