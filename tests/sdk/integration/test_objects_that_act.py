"""Objects that act (issue 19): experiments, folders and annotations returned by a client carry methods bound to
that client, each delegating to the curated resource method of the same name; they are deeply immutable, compare
by their fields, and pickle without their client. With `Tally` and `AsyncTally`, against the live server."""

from __future__ import annotations

import copy
import pickle
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

import tally

from ..conftest import AnyClient, acting, call, collect, unique

pytestmark = pytest.mark.integration

NESTED = {"lr": 0.1, "optim": {"name": "adam", "betas": [0.9, 0.999], "groups": [{"lr": 0.1, "tags": ["a"]}]}}


async def test_experiment_methods_act_through_the_client_and_return_new_objects(client: AnyClient) -> None:
    folder = await call(client.folders.create(unique("home")))
    experiment = await call(client.experiments.create(unique("acting"), metadata={"lr": 0.1}))
    assert type(experiment) is acting(client, "Experiment")

    renamed = await call(experiment.update(name=experiment.name + "-2", metadata=NESTED, tags=["x"]))
    assert type(renamed) is acting(client, "Experiment")
    assert (renamed.name, renamed.metadata, renamed.tags) == (experiment.name + "-2", NESTED, ("x",))
    assert experiment.metadata == {"lr": 0.1}  # the object the method was called on is unchanged

    moved = await call(renamed.move(folder.id))
    assert moved.folder_id == folder.id
    events = [{"name": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(5)]
    await call(client.metrics.ingest(experiment.id, events))
    points = await collect(moved.metrics.list(name="loss", min_step=2))
    assert [p.step for p in points] == [2, 3, 4]
    summary = await call(moved.summary(name="loss"))
    assert [(m.name, m.count) for m in summary.metrics] == [("loss", 5)]
    series = await call(moved.series("loss", max_points=2))
    assert sum(bucket.count for bucket in series.buckets) == 5

    note = await call(client.annotations.create(experiment.id, "warmup done", step=2))
    assert await collect(moved.annotations.list()) == [note]

    done = await call(moved.set_status("completed"))
    assert done.status == "completed"
    assert done.ended_at is not None
    archived = await call(done.archive())
    assert archived.archived_at is not None
    assert (await call(archived.unarchive())).archived_at is None
    reopened = await call(archived.set_status("running", reopen=True))
    assert reopened.status == "running"


async def test_folder_and_annotation_methods(client: AnyClient) -> None:
    folder = await call(client.folders.create(unique("box")))
    assert type(folder) is acting(client, "Folder")
    inside = await call(client.experiments.create(unique("in"), folder_id=folder.id))
    other = await call(client.experiments.create(unique("in"), folder_id=folder.id))
    listed = await collect(folder.experiments.list())
    assert listed == [inside, other]
    assert all(type(e) is acting(client, "Experiment") for e in listed)
    assert await collect(folder.experiments.list(limit=1)) == [inside]
    # objects from a list are bound too: they act
    assert (await call(listed[1].archive())).archived_at is not None
    assert [e.id for e in await collect(folder.experiments.list())] == [inside.id]

    archived = await call(folder.archive())
    assert type(archived) is acting(client, "Folder")
    assert archived.archived_at is not None
    assert (await call(archived.unarchive())).archived_at is None

    note = await call(client.annotations.create(inside.id, "to delete"))
    assert type(note) is acting(client, "Annotation")
    (listed_note,) = await collect(inside.annotations.list())
    assert await call(listed_note.delete()) is None
    with pytest.raises(tally.NotFoundError):
        await call(client.annotations.get(inside.id, note.id))
    with pytest.raises(tally.NotFoundError):
        await call(note.delete())


async def test_per_call_options_reach_the_request(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("opts")))
    key = f"obj-{uuid.uuid4()}"
    first = await call(experiment.update(description="one", idempotency_key=key))
    replayed = await call(experiment.update(description="one", idempotency_key=key))
    assert replayed == first
    with pytest.raises(tally.UnprocessableEntityError) as caught:
        await call(experiment.update(description="two", idempotency_key=key))
    assert caught.value.code == "idempotency_key_reused"
    with pytest.raises(TypeError):
        await call(experiment.summary(bogus=1))


async def test_returned_objects_are_deeply_immutable(client: AnyClient) -> None:
    folder = await call(client.folders.create(unique("frozen"), metadata=NESTED))
    experiment = await call(client.experiments.create(unique("frozen"), metadata=NESTED))
    note = await call(client.annotations.create(experiment.id, "n", metadata=NESTED))
    fetched = await call(client.experiments.get(experiment.id))
    listed = (await collect(client.experiments.list(name_prefix=experiment.name)))[0]
    for obj in (folder, experiment, note, fetched, listed):
        metadata = obj.metadata
        assert metadata == NESTED
        with pytest.raises(TypeError):
            metadata["lr"] = 2
        with pytest.raises(TypeError):
            del metadata["lr"]
        with pytest.raises(TypeError):
            metadata.update(lr=2)
        with pytest.raises(TypeError):
            metadata["optim"]["name"] = "sgd"
        with pytest.raises(TypeError):
            metadata["optim"]["betas"][0] = 0.5
        with pytest.raises(TypeError):
            metadata["optim"]["groups"][0]["lr"] = 0.5
        with pytest.raises(AttributeError):
            obj.metadata = {}
        assert metadata == NESTED  # nothing changed
        # plain builtins out, for JSON and for callers that mutate their copy
        plain = obj.to_dict()["metadata"]
        assert plain == NESTED
        assert type(plain) is dict
        assert type(plain["optim"]["betas"]) is list
        assert type(plain["optim"]["groups"][0]) is dict
        plain["lr"] = 3  # a copy: the object is unchanged
        assert obj.metadata["lr"] == 0.1
        assert msgspec.json.decode(msgspec.json.encode(obj)) == msgspec.json.decode(
            msgspec.json.encode(obj.to_dict())
        )
    summary = await call(client.experiments.summary(experiment.id))
    assert summary.metrics == ()
    event = {"name": "loss", "value": 1.0, "step": 0, "metadata": {"split": "a"}}
    await call(client.metrics.ingest(experiment.id, [event]))
    (metric,) = (await call(experiment.summary())).metrics
    with pytest.raises(TypeError):
        metric.metadata["split"] = "b"  # type: ignore[index]


async def test_equality_ignores_the_bound_client(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("eq"), metadata=NESTED, tags=["a"]))
    again = await call(client.experiments.get(experiment.id))
    other_client = await call(client.with_options(timeout=3.0).experiments.get(experiment.id))
    assert experiment == again == other_client
    assert hash(experiment) == hash(again) == hash(other_client)
    assert len({experiment, again, other_client}) == 1
    changed = await call(again.update(description="changed"))
    assert changed != again


async def test_pickled_and_hand_built_objects_are_unbound_and_say_so(client: AnyClient) -> None:
    experiment = await call(client.experiments.create(unique("pickle"), metadata=NESTED))
    folder = await call(client.folders.create(unique("pickle")))
    note = await call(client.annotations.create(experiment.id, "n"))
    name = type(experiment).__name__
    restored = pickle.loads(pickle.dumps(experiment))  # noqa: S301 - our own bytes
    assert restored == experiment
    assert type(restored) is type(experiment)
    with pytest.raises(TypeError):
        restored.metadata["lr"] = 2
    unpickled = (
        rf"^this {name} was unpickled and is not bound to a client: "
        rf"fetch it again with client\.experiments\.get\('{experiment.id}'\)$"
    )
    with pytest.raises(tally.UnboundObjectError, match=unpickled):
        await call(restored.update(name="x"))
    with pytest.raises(tally.UnboundObjectError, match=unpickled):
        restored.metrics.list()
    with pytest.raises(tally.UnboundObjectError, match=r"client\.folders\.get\("):
        await call(pickle.loads(pickle.dumps(folder)).archive())  # noqa: S301 - our own bytes
    fetch_note = rf"client\.annotations\.get\('{experiment.id}', '{note.id}'\)"
    with pytest.raises(tally.UnboundObjectError, match=fetch_note):
        await call(pickle.loads(pickle.dumps(note)).delete())  # noqa: S301 - our own bytes
    assert (await call(client.experiments.get(experiment.id))).name == experiment.name  # nothing was sent

    now = datetime.now(UTC)
    built = acting(client, "Experiment")(
        id="exp_hand", name="by hand", metadata={"a": [1]}, status="running", created_at=now, updated_at=now
    )
    with pytest.raises(TypeError):
        built.metadata["a"][0] = 2
    assert built == pickle.loads(pickle.dumps(built))  # noqa: S301 - our own bytes
    with pytest.raises(
        tally.UnboundObjectError,
        match=rf"^this {name} was not fetched by a client \(built by hand or decoded directly\), so it is not "
        r"bound to one: fetch it with client\.experiments\.get\('exp_hand'\)$",
    ):
        await call(built.archive())
    # copies keep their binding (they are the same immutable object)
    assert copy.copy(experiment) is experiment
    assert copy.deepcopy(experiment) is experiment
    assert (await call(copy.deepcopy(experiment).summary())).metrics == ()
