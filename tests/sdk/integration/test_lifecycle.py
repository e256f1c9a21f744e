"""The resource lifecycle through the SDK, against the live reference server, with `Tally` and `AsyncTally`:
experiments.update / archive / unarchive, tags and the tag filter, folders.archive / unarchive,
annotations.delete; and a run whose experiment is archived under it (rejected, never retried forever)."""

from __future__ import annotations

import pytest

import tally
from tally import Tally
from tally.run import RunRejectedError

from ..conftest import AnyClient, call, collect, unique

pytestmark = pytest.mark.integration


async def test_update_experiment(client: AnyClient) -> None:
    created = await call(client.experiments.create(unique("exp"), metadata={"lr": 0.1}, tags=["a", "b"]))
    assert created.tags == ("a", "b")
    assert created.archived_at is None

    renamed = await call(client.experiments.update(created.id, name="renamed"))
    assert (renamed.name, renamed.tags, renamed.metadata) == ("renamed", ("a", "b"), {"lr": 0.1})
    changed = await call(
        client.experiments.update(created.id, description="d", metadata={"lr": 0.2}, tags=["c"])
    )
    assert (changed.description, changed.metadata, changed.tags) == ("d", {"lr": 0.2}, ("c",))
    assert await call(client.experiments.get(created.id)) == changed
    cleared = await call(client.experiments.update(created.id, description=None, metadata=None, tags=None))
    assert (cleared.description, cleared.metadata, cleared.tags) == (None, {}, ())

    with pytest.raises(ValueError, match="needs name="):
        await call(client.experiments.update(created.id))
    with pytest.raises(TypeError, match="not one string"):
        await call(client.experiments.update(created.id, tags="solo"))
    with pytest.raises(tally.BadRequestError) as caught:
        await call(client.experiments.update(created.id, tags=["has space"]))
    assert "tags[0]" in caught.value.message
    with pytest.raises(tally.NotFoundError):
        await call(client.experiments.update("exp_missing", name="n"))


async def test_tags_filter_and_archived_experiments(client: AnyClient) -> None:
    tag = unique("tag")
    first = await call(client.experiments.create(unique("exp"), tags=[tag]))
    second = await call(client.experiments.create(unique("exp"), tags=["x", tag]))
    await call(client.experiments.create(unique("exp"), tags=["x"]))
    listed = await collect(client.experiments.list(tag=tag, page_size=1))
    assert [e.id for e in listed] == [first.id, second.id]

    archived = await call(client.experiments.archive(second.id))
    assert archived.archived_at is not None
    assert (await call(client.experiments.archive(second.id))).archived_at == archived.archived_at
    assert [e.id for e in await collect(client.experiments.list(tag=tag))] == [first.id]
    with_archived = await collect(client.experiments.list(tag=tag, include_archived=True))
    assert [e.id for e in with_archived] == [first.id, second.id]
    assert with_archived[1].archived_at == archived.archived_at

    with pytest.raises(tally.ConflictError) as caught:
        await call(client.metrics.ingest(second.id, [{"name": "loss", "value": 1.0, "step": 0}]))
    assert caught.value.code == "experiment_archived"
    assert "unarchive" in str(caught.value)
    with pytest.raises(tally.ConflictError) as caught:
        await call(client.annotations.create(second.id, "note"))
    assert caught.value.code == "experiment_archived"

    restored = await call(client.experiments.unarchive(second.id))
    assert restored.archived_at is None
    result = await call(client.metrics.ingest(second.id, [{"name": "loss", "value": 1.0, "step": 0}]))
    assert result.accepted == 1


async def test_archive_folders(client: AnyClient) -> None:
    parent = await call(client.folders.create(unique("p")))
    kept = await call(client.folders.create("kept", parent_id=parent.id))
    gone = await call(client.folders.create("gone", parent_id=parent.id))
    archived = await call(client.folders.archive(gone.id))
    assert archived.archived_at is not None
    assert [f.id for f in await collect(client.folders.list(parent_id=parent.id))] == [kept.id]
    both = await collect(client.folders.list(parent_id=parent.id, include_archived=True))
    assert [f.id for f in both] == [kept.id, gone.id]
    assert (await call(client.folders.unarchive(gone.id))).archived_at is None
    assert len(await collect(client.folders.list(parent_id=parent.id))) == 2


async def test_delete_annotation(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("exp")))
    note = await call(client.annotations.create(experiment.id, "note", client_event_id="n1"))
    other = await call(client.annotations.create(experiment.id, "other", client_event_id="n2"))
    assert await call(client.annotations.delete(experiment.id, note.id)) is None
    assert [a.id for a in await collect(client.annotations.list(experiment.id))] == [other.id]
    with pytest.raises(tally.NotFoundError) as caught:
        await call(client.annotations.delete(experiment.id, note.id))
    assert caught.value.request_id
    again = await call(client.annotations.create(experiment.id, "new text", client_event_id="n1"))
    assert again.id != note.id  # the client_event_id was freed by the delete


def test_a_run_into_an_archived_experiment_rejects_and_goes_on(sync_client: Tally) -> None:
    """409 `experiment_archived` is an answer no retry changes: the sender counts the batch as rejected, keeps the
    error for `run.status()`, does not retry it forever, and says so: `flush()` raises (no rejection is
    silent)."""
    experiment = sync_client.experiments.create(unique("archived-run"))
    sync_client.experiments.archive(experiment.id)
    with sync_client.run(experiment_id=experiment.id, flush_timeout=60) as run:
        run.log({"loss": 1.0}, step=0)
        run.annotate("note", step=0)
        with pytest.raises(RunRejectedError, match="experiment_archived") as refused:
            run.flush(timeout=60)
        assert refused.value.rejected == 2
        status = run.status()
        assert (status.logged, status.stored, status.pending, status.rejected) == (2, 0, 0, 2)
        assert "experiment_archived" in (status.last_error or "")
    assert list(sync_client.metrics.list(experiment.id)) == []
    sync_client.experiments.unarchive(experiment.id)
    assert sync_client.experiments.get(experiment.id).status == "completed"
