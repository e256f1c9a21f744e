"""A run's config: `client.run(..., config=...)`, `run.config` (read-only) and `run.config.update(...)`.

Where it is stored: in the experiment's metadata under one top-level key, `config`, nested by the dotted keys,
so `{"optim": {"lr": 3e-4}}` is found by `listExperiments(metadata_key="config.optim.lr",
metadata_value="0.0003")` (the server indexes nested metadata by dotted paths; a key that holds a dot could not
be addressed, so dotted keys are always nested). Why under `config.` and not at the top level: the metadata takes
at most 64 top-level entries (a config has more hyperparameters than that), `metadata=` stays the caller's own
(a config key never overwrites it), and the dashboard and filters tell config from other metadata by the prefix.

What a config may be: a mapping (dicts, OmegaConf and Hydra `DictConfig`, which are mappings), a dataclass
instance, an `argparse.Namespace`, or an object with `model_dump()` (pydantic), `to_dict()` or `_asdict()`
(namedtuples), nested in any mix. It is flattened to dotted keys (`run.config["optim.lr"]`); leaves are kept when
they are JSON scalars or lists, finite floats included; anything else (a Path, an enum, a non-finite float) is
kept as its `str()`. Nothing here imports OmegaConf: it is read through the mapping protocol. Nor argparse: a
Namespace can exist only once the program has imported argparse, so it is looked up in `sys.modules` (a job
that does not use argparse does not pay for it at `client.run()`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tally._limits import check_metadata

__all__ = ["CONFIG_KEY", "RunConfig", "flatten_config", "nest", "with_config"]

CONFIG_KEY = "config"
"""The experiment metadata's top-level key that holds the config."""


def _as_mapping(value: Any) -> Mapping[Any, Any] | None:
    """The mapping a config-like object stands for, or None for a leaf."""
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    argparse = sys.modules.get("argparse")
    if argparse is not None and isinstance(value, argparse.Namespace):
        namespace: dict[str, Any] = vars(value)
        return namespace
    for method in ("model_dump", "to_dict", "_asdict"):
        convert = getattr(value, method, None)
        if callable(convert) and not isinstance(value, type):
            converted = convert()
            if isinstance(converted, Mapping):
                return converted
    return None


def _leaf(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    mapping = _as_mapping(value)
    if mapping is not None:  # a mapping inside a list: kept whole, its own leaves converted
        return {str(k): _leaf(v) for k, v in mapping.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_leaf(item) for item in value]  # lists, tuples, OmegaConf's ListConfig
    return str(value)


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """`config` as dotted keys to leaves; raises ValueError naming what is not a config or an empty key part."""
    mapping = _as_mapping(config)
    if mapping is None:
        raise ValueError(
            f"config is a {type(config).__name__}: pass a dict, a dataclass, an argparse Namespace or an "
            "OmegaConf DictConfig"
        )
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key)
        if not name or any(not part for part in name.split(".")):
            raise ValueError(f"config key {prefix + name!r} has an empty part: name every level")
        path = prefix + name
        if _as_mapping(value) is not None:
            nested = flatten_config(value, path + ".")
            flat.update(nested if nested else {path: {}})
        else:
            flat[path] = _leaf(value)
    return flat


def nest(flat: Mapping[str, Any], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Dotted keys as nested objects (added to `into`, a copy); raises ValueError when a key is both a value and
    the parent of others (`a` and `a.b`)."""
    tree = _copy(into or {})
    for path, value in flat.items():
        node = tree
        parts = path.split(".")
        for index, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(
                    f"config key {path!r} nests under {'.'.join(parts[: index + 1])!r}, which holds a value: "
                    "rename one of them"
                )
            node = child
        if isinstance(node.get(parts[-1]), dict) and node[parts[-1]] and not isinstance(value, dict):
            raise ValueError(f"config key {path!r} holds nested keys already: rename one of them")
        node[parts[-1]] = value
    return tree


def _copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def with_config(metadata: Mapping[str, Any] | None, flat: Mapping[str, Any]) -> dict[str, Any] | None:
    """The experiment metadata to create with: the caller's `metadata` plus the config under `config`, checked
    against the contract's limits; raises ValueError when `metadata` has its own `config` key."""
    if not flat:
        return dict(metadata) if metadata else None
    if metadata and CONFIG_KEY in metadata:
        raise ValueError(
            f"metadata has a {CONFIG_KEY!r} key, which config= fills: pass the config as config= only"
        )
    merged = {**(metadata or {}), CONFIG_KEY: nest(flat)}
    check_metadata(merged)
    return merged


class RunConfig(Mapping[str, Any]):
    """The run's config as dotted keys (`run.config["optim.lr"]`): read-only; `update()` adds to it and sends the
    change through the spool, so it survives an outage like any record."""

    def __init__(self, flat: dict[str, Any], send: Callable[[dict[str, Any]], None]) -> None:
        self._flat = flat
        self._send = send

    def __getitem__(self, key: str) -> Any:
        return self._flat[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat)

    def __len__(self) -> int:
        return len(self._flat)

    def __repr__(self) -> str:
        return f"RunConfig({self._flat!r})"

    def update(self, config: Any = None, /, **values: Any) -> None:
        """Add or change config keys (nested objects are flattened, as at `client.run(..., config=...)`); the
        experiment's metadata gets them once the sender reaches this record. Raises ValueError for a config the
        contract's metadata limits would refuse."""
        flat = flatten_config(config) if config is not None else {}
        flat.update(flatten_config(values))
        if not flat:
            return
        merged = {**self._flat, **flat}
        check_metadata({CONFIG_KEY: nest(merged)}, "config")
        self._send(flat)
        self._flat = merged
