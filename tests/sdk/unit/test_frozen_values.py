"""Deep immutability of the public types' free-form values (`tally_api_types.FrozenDict` / `FrozenList`), without
HTTP: what the generator's `__post_init__` does on construction and decoding, and what it leaves plain."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from tally_api_types import Experiment, FrozenDict, FrozenList, MetricPoint, freeze

NESTED: dict[str, Any] = {
    "lr": 0.1,
    "optim": {"betas": [0.9, 0.999], "groups": [{"tags": ["a"]}]},
    "seed": None,
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def experiment(metadata: dict[str, Any]) -> Experiment:
    return Experiment(
        id="exp_1", name="n", metadata=metadata, status="running", created_at=NOW, updated_at=NOW
    )


def test_freeze_reaches_every_depth_and_still_compares_equal() -> None:
    frozen = freeze(NESTED)
    assert frozen == NESTED
    assert type(frozen) is FrozenDict
    assert type(frozen["optim"]) is FrozenDict
    assert type(frozen["optim"]["betas"]) is FrozenList
    assert type(frozen["optim"]["groups"][0]["tags"]) is FrozenList
    assert isinstance(frozen, dict)
    assert isinstance(frozen["optim"]["betas"], list)
    assert freeze(frozen) is frozen
    assert freeze((1, [2])) == (1, [2])
    assert type(freeze((1, [2]))[1]) is FrozenList
    assert type(FrozenDict({"a": [{"b": 1}]})["a"][0]) is FrozenDict  # built directly: frozen too
    assert hash(frozen) == hash(freeze(NESTED))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("lr", 2),
        lambda d: d.__delitem__("lr"),
        lambda d: d.update(lr=2),
        lambda d: d.pop("lr"),
        lambda d: d.popitem(),
        lambda d: d.setdefault("x", 1),
        lambda d: d.clear(),
        lambda d: d.__ior__({"x": 1}),
        lambda d: d["optim"].__setitem__("betas", []),
        lambda d: d["optim"]["betas"].__setitem__(0, 0.5),
        lambda d: d["optim"]["betas"].append(1.0),
        lambda d: d["optim"]["betas"].extend([1.0]),
        lambda d: d["optim"]["betas"].insert(0, 1.0),
        lambda d: d["optim"]["betas"].pop(),
        lambda d: d["optim"]["betas"].remove(0.9),
        lambda d: d["optim"]["betas"].sort(),
        lambda d: d["optim"]["betas"].reverse(),
        lambda d: d["optim"]["betas"].clear(),
        lambda d: d["optim"]["betas"].__delitem__(0),
        lambda d: d["optim"]["betas"].__iadd__([1.0]),
        lambda d: d["optim"]["betas"].__imul__(2),
        lambda d: d["optim"]["groups"][0]["tags"].append("b"),
    ],
)
def test_every_mutator_raises_type_error(mutate: Any) -> None:
    frozen = freeze(NESTED)
    with pytest.raises(TypeError, match="is immutable"):
        mutate(frozen)
    assert frozen == NESTED


def test_public_types_freeze_on_construction_decoding_and_unpickling() -> None:
    built = experiment({"optim": {"betas": [0.9]}})
    assert type(built.metadata["optim"]["betas"]) is FrozenList
    decoded = msgspec.json.decode(msgspec.json.encode(built), type=Experiment)
    assert decoded == built
    assert type(decoded.metadata["optim"]) is FrozenDict
    restored = pickle.loads(pickle.dumps(decoded))  # noqa: S301 - our own bytes
    assert restored == decoded
    assert type(restored.metadata["optim"]["betas"]) is FrozenList
    assert copy.deepcopy(decoded.metadata) is decoded.metadata
    assert hash(built) == hash(decoded)
    replaced = msgspec.structs.replace(built, metadata={"x": [1]})
    assert type(replaced.metadata["x"]) is FrozenList


def test_to_dict_and_encoding_give_plain_values() -> None:
    built = experiment(NESTED)
    plain = built.to_dict()
    assert plain["metadata"] == NESTED
    assert type(plain["metadata"]) is dict
    assert type(plain["metadata"]["optim"]["betas"]) is list
    assert type(plain["metadata"]["optim"]["groups"][0]) is dict
    assert type(plain["tags"]) is list
    plain["metadata"]["lr"] = 1.0  # a copy
    assert built.metadata["lr"] == 0.1
    assert msgspec.json.decode(msgspec.json.encode(built))["metadata"] == NESTED


def test_metric_points_keep_plain_dicts_for_speed() -> None:
    point = MetricPoint(
        name="loss", value=1.0, step=0, timestamp=NOW, metadata={"split": "train"}, client_event_id="e"
    )
    assert type(point.metadata) is dict
