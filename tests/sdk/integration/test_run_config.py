"""A run's config and tags (issue 21, "Config and tags"): `client.run(..., config=..., tags=...)`, `run.config`
(read-only, dotted keys) and `run.config.update(...)` through the spool; the config is stored in the experiment's
metadata under `config`, where `listExperiments`' `metadata_key`/`metadata_value` filter finds it."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tally import Tally

from ..conftest import unique

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Optim:
    name: str = "adam"
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass
class TrainConfig:
    optim: Optim = dataclasses.field(default_factory=Optim)
    epochs: int = 10
    data: Path = Path("/data/imagenet")


class DictConfigLike(Mapping[str, Any]):
    """A read-only mapping, as OmegaConf's (and Hydra's) `DictConfig` is one: read through the mapping protocol."""

    def __init__(self, content: dict[str, Any]) -> None:
        self._content = content

    def __getitem__(self, key: str) -> Any:
        value = self._content[key]
        return DictConfigLike(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._content)

    def __len__(self) -> int:
        return len(self._content)


def test_a_nested_config_is_flattened_readable_and_filterable(sync_client: Tally) -> None:
    args = argparse.Namespace(seed=7, model=DictConfigLike({"depth": 50, "head": {"dropout": 0.1}}))
    config = {"train": TrainConfig(), "args": args, "note.kind": "baseline"}
    name = unique("config")
    with sync_client.run(name, config=config, tags=["resnet", "sweep:1"], metadata={"owner": "ana"}) as run:
        assert dict(run.config) == {
            "train.optim.name": "adam",
            "train.optim.lr": 3e-4,
            "train.optim.betas": [0.9, 0.999],
            "train.epochs": 10,
            "train.data": "/data/imagenet",
            "args.seed": 7,
            "args.model.depth": 50,
            "args.model.head.dropout": 0.1,
            "note.kind": "baseline",
        }
        with pytest.raises(TypeError):
            run.config["train.epochs"] = 11  # type: ignore[index]
        run.log({"loss": 1.0})
    experiment = sync_client.experiments.get(run.id or "")
    assert experiment.metadata["owner"] == "ana"
    assert experiment.metadata["config"]["train"]["optim"] == {
        "name": "adam",
        "lr": 3e-4,
        "betas": [0.9, 0.999],
    }
    assert experiment.metadata["config"]["note"] == {"kind": "baseline"}
    assert sorted(experiment.tags) == ["resnet", "sweep:1"]
    found = sync_client.experiments.list(
        metadata_key="config.train.optim.lr", metadata_value=3e-4, name_prefix=name
    )
    assert [e.id for e in found] == [run.id]
    assert [e.id for e in sync_client.experiments.list(tag="sweep:1", name_prefix=name)] == [run.id]
    nested = sync_client.experiments.list(metadata_key="config.args.model.head.dropout", name_prefix=name)
    assert [e.id for e in nested] == [run.id]


def test_config_update_goes_through_the_spool_in_order(sync_client: Tally) -> None:
    with sync_client.run(unique("config-update"), config={"lr": 0.1}) as run:
        run.log({"loss": 1.0})
        run.config.update({"schedule": {"warmup": 100}}, lr=0.05)
        assert run.config == {"lr": 0.05, "schedule.warmup": 100}
        run.flush(timeout=30)
        assert sync_client.experiments.get(run.id or "").metadata["config"] == {
            "lr": 0.05,
            "schedule": {"warmup": 100},
        }
        assert run.status().stored == 2  # the point and the config record


def test_resuming_merges_the_config_and_adds_the_tags(sync_client: Tally) -> None:
    name = unique("config-resume")
    with sync_client.run(name, config={"lr": 0.1, "epochs": 5}, tags=["a"]) as first:
        first.log({"loss": 1.0})
    with sync_client.run(name, resume="must", config={"epochs": 10, "restarts": 1}, tags=["b"]) as second:
        second.log({"loss": 0.5})
    experiment = sync_client.experiments.get(first.id or "")
    assert experiment.metadata["config"] == {"lr": 0.1, "epochs": 10, "restarts": 1}
    assert sorted(experiment.tags) == ["a", "b"]


def test_bad_configs_and_tags_are_refused_at_the_call_naming_the_fix(sync_client: Tally) -> None:
    with pytest.raises(ValueError, match="pass a dict"):
        sync_client.run("x", config=3)
    with pytest.raises(ValueError, match="holds a value"):
        sync_client.run("x", config={"a": 1, "a.b": 2})
    with pytest.raises(ValueError, match="config= fills"):
        sync_client.run("x", config={"a": 1}, metadata={"config": {}})
    with pytest.raises(TypeError, match="list of strings"):
        sync_client.run("x", tags="resnet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"tags\[0\]"):
        sync_client.run("x", tags=["has space"])
    with pytest.raises(ValueError, match="8192-byte limit"):
        sync_client.run("x", config={"blob": "x" * 9000})
    with (
        sync_client.run(unique("config-bad-update")) as run,
        pytest.raises(ValueError, match="8192-byte limit"),
    ):
        run.config.update(blob="x" * 9000)
    assert dict(run.config) == {}


def test_a_real_omegaconf_config_if_installed(sync_client: Tally) -> None:
    omegaconf = pytest.importorskip("omegaconf")
    config = omegaconf.OmegaConf.create({"optim": {"lr": 3e-4, "name": "${model}-adam"}, "model": "resnet"})
    with sync_client.run(unique("omegaconf"), config=config) as run:
        assert run.config["optim.name"] == "resnet-adam"  # interpolations resolved
