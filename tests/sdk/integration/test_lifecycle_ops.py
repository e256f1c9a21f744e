"""The lifecycle operations of contract 1.5.0 through the SDK, against the live reference server, with `Tally` and
`AsyncTally`: experiments.delete (only with confirm=True), folders.delete (an empty one only), annotations.get
and .update, ingestion_keys.get."""

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


async def test_get_and_update_an_annotation(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("notes")))
    note = await call(client.annotations.create(experiment.id, "lr drop", step=3, metadata={"lr": 0.1}))
    assert await call(client.annotations.get(experiment.id, note.id)) == note

    texted = await call(client.annotations.update(experiment.id, note.id, text="lr drop (cosine)"))
    assert (texted.text, texted.metadata, texted.step, texted.id) == (
        "lr drop (cosine)",
        {"lr": 0.1},
        3,
        note.id,
    )
    cleared = await call(client.annotations.update(experiment.id, note.id, metadata=None))
    assert cleared.metadata == {}
    assert await call(client.annotations.get(experiment.id, note.id)) == cleared

    with pytest.raises(ValueError, match="needs text= or metadata="):
        await call(client.annotations.update(experiment.id, note.id))
    with pytest.raises(ValueError, match="annotation text"):
        await call(client.annotations.update(experiment.id, note.id, text=""))
    with pytest.raises(tally.NotFoundError):
        await call(client.annotations.get(experiment.id, "ann_missing"))
    with pytest.raises(tally.NotFoundError):
        await call(client.annotations.update(experiment.id, "ann_missing", text="t"))


async def test_get_an_ingestion_key_without_its_token(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("keys")))
    created = await call(client.ingestion_keys.create(experiment.id, name="trainer"))
    got = await call(client.ingestion_keys.get(created.id))
    assert (got.id, got.name, got.token_hint, got.revoked_at) == (
        created.id,
        "trainer",
        created.token_hint,
        None,
    )
    assert not hasattr(got, "token")
    revoked = await call(client.ingestion_keys.revoke(created.id))
    assert await call(client.ingestion_keys.get(created.id)) == revoked
    with pytest.raises(tally.NotFoundError):
        await call(client.ingestion_keys.get("ik_missing"))
