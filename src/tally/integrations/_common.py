"""What the framework integrations share: the run they log to, and metric values as frameworks hand them.

`RunHolder` is the one `client.run(...)` an integration logs to. It is started on first use (frameworks create
their loggers long before training starts, often in processes that never log: other ranks), closed when the
framework says training ended, and reopened (the same experiment, `resume="must"`) if the framework logs again
after that, as Lightning does for `trainer.test()` after `trainer.fit()` and Hugging Face's `Trainer` for
`evaluate()` after `train()`: MLflow's callbacks log such late metrics to a new, unrelated run, wandb's keep the
run open forever; here they reach the same experiment and its final status is set again. A run the user passed
(`run=`) is the user's: it is never closed here.

`metric_values` turns a framework's log dict into what `run.log()` takes: tensors and numpy or jax scalars as
numbers; strings, NaN, Infinity and arrays left out with one warning per name (a training job must not die for a
metric the API cannot store); names with characters the API refuses get `_` instead, with one warning.
"""

from __future__ import annotations

import json
import math
import re
from argparse import Namespace
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from tally_api_types import limits as _contract

from tally._limits import MAX_METADATA_BYTES
from tally._logging import logger

if TYPE_CHECKING:
    from tally import Tally
    from tally.run import Run

__all__ = ["RunHolder", "fit_config", "flat_items", "metric_values", "run_status"]

Status = Literal["completed", "failed", "cancelled"]
_STATUSES: dict[str, Status] = {
    "success": "completed",
    "finished": "completed",
    "completed": "completed",
    "failed": "failed",
    "aborted": "cancelled",
    "cancelled": "cancelled",
}
_BAD_NAME = re.compile(r"[^A-Za-z0-9_./:@-]")
_MAX_NAME = _contract.METRIC_NAME_MAX_LENGTH
_SECRET_KEY = re.compile(r"(token|secret|password|api_key)$", re.IGNORECASE)
_CONFIG_MARGIN = 512
"""Bytes of the metadata's 8 KiB left free when a framework's config is cut to fit (for the user's own keys)."""


def run_status(status: str) -> Status:
    """A framework's end status (Lightning's "success", "failed", "finished") as the experiment's."""
    return _STATUSES.get(status.lower(), "completed")


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if not isinstance(value, int | float):
        item = getattr(value, "item", None)  # a one-element torch tensor, numpy or jax array
        if not callable(item):
            return None
        try:
            value = item()
        except (ValueError, RuntimeError, TypeError):  # more than one element
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metric_name(name: str, warned: set[str]) -> str:
    """`name` as the API takes it: characters it refuses replaced by `_`, at most 256 characters."""
    fixed = _BAD_NAME.sub("_", name)[:_MAX_NAME] or "_"
    if fixed != name and name not in warned:
        warned.add(name)
        logger.warning(
            "tally: metric %r is logged as %r (the API takes [A-Za-z0-9_./:@-], 256 at most)", name, fixed
        )
    return fixed


def metric_values(logs: Mapping[str, Any], warned: set[str], prefix: str = "") -> dict[str, float | int]:
    """The numeric entries of `logs`, named `prefix + name`; what is not a finite number is left out, with one
    warning per name."""
    values: dict[str, float | int] = {}
    for key, value in logs.items():
        number = _number(value)
        if number is None:
            if key not in warned:
                warned.add(key)
                logger.warning(
                    "tally: %r is %s, not a finite number: it is not logged as a metric",
                    key,
                    type(value).__name__ if not isinstance(value, float) else value,
                )
            continue
        values[metric_name(prefix + str(key), warned)] = number
    return values


def fit_config(items: Iterable[tuple[str, Any]], budget: int) -> tuple[dict[str, Any], int]:
    """The leading `items` (dotted key, value) that fit in `budget` bytes of compact JSON, skipping Nones, empty
    values and keys that name secrets (tokens, passwords), and how many were left out for lack of room. A
    framework's whole config (Hugging Face's `TrainingArguments` alone has 150 fields) is larger than the
    experiment's metadata may be (8 KiB): callers order the items by importance."""
    chosen: dict[str, Any] = {}
    used = 2
    left_out = 0
    for key, value in items:
        empty = value is None or (isinstance(value, str | list | tuple | dict) and not value)
        if empty or _SECRET_KEY.search(key):
            continue
        try:
            size = len(
                json.dumps({key: value}, separators=(",", ":"), ensure_ascii=False, default=str).encode()
            )
        except (TypeError, ValueError):
            left_out += 1
            continue
        if used + size > budget:
            left_out += 1
            continue
        chosen[key] = value
        used += size
    return chosen, left_out


def config_budget(run: Run, extra_metadata: Mapping[str, Any] | None) -> int:
    """The bytes left in the experiment's metadata for more config, given the run's config and the user's
    metadata, less a margin."""
    used = len(json.dumps(dict(run.config), separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if extra_metadata:
        used += len(json.dumps(dict(extra_metadata), separators=(",", ":"), default=str).encode())
    return max(MAX_METADATA_BYTES - used - _CONFIG_MARGIN, 0)


def flat_items(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested hyperparameters as (dotted key, leaf) pairs, in order; leaves that are not JSON values (a module, a
    callable, a path) as their `str()`."""
    items: list[tuple[str, Any]] = []
    for key, value in params.items():
        path = f"{prefix}{key}"
        if isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value:
            items.extend(flat_items(value, path + "."))
        elif value is None or isinstance(value, bool | int | float | str):
            items.append((path, value))
        elif isinstance(value, list | tuple) and all(isinstance(v, bool | int | float | str) for v in value):
            items.append((path, list(value)))
        else:
            items.append((path, str(value)))
    return items


class RunHolder:
    """The run an integration logs to: the user's `run`, else one started on first use with `client.run(name,
    **options)` (`client`: the user's, else a `Tally()` made from the environment and closed with the run)."""

    def __init__(
        self, name: str | None, *, client: Tally | None, run: Run | None, options: Mapping[str, Any]
    ) -> None:
        self.name = name
        self._client = client
        self._run = run
        self._owned = run is None
        self._options = dict(options)
        self._own_client: Tally | None = None
        self._closed = False
        self.warned: set[str] = set()

    @property
    def started(self) -> bool:
        return self._run is not None and not self._closed

    @property
    def ever_started(self) -> bool:
        return self._run is not None

    def default_name(self, name: str) -> None:
        """Name the experiment `name` unless it has a name or an `experiment_id=` already."""
        if self.name is None and "experiment_id" not in self._options:
            self.name = name

    @property
    def experiment_id(self) -> str | None:
        return self._run.id if self._run is not None else self._options.get("experiment_id")

    def get(self) -> Run:
        """The run, started (or reopened after `close()`) if need be."""
        if self._run is not None and not self._closed:
            return self._run
        client = self._client or self._own_client
        if client is None:
            from tally import Tally

            client = self._own_client = Tally()
        if self._run is not None and self._run.id is not None:
            # Logged to again after the framework's end: the same experiment, reopened.
            self._run = client.run(experiment_id=self._run.id, resume="must")
        else:
            self._run = client.run(self.name, **self._options)
        self._closed = False
        return self._run

    def log(self, values: Mapping[str, float | int], step: int | None) -> None:
        if values:
            self.get().log(values, step=step)

    def add_config(self, items: Iterable[tuple[str, Any]], what: str) -> None:
        """Add a framework's config to the run's, as much as the metadata's limit leaves room for."""
        run = self.get()
        chosen, left_out = fit_config(items, config_budget(run, self._options.get("metadata")))
        if left_out:
            logger.info(
                "tally: %d entries of %s are not in the experiment's config (its metadata is at most %d bytes)",
                left_out,
                what,
                MAX_METADATA_BYTES,
            )
        if chosen:
            try:
                run.config.update(chosen)
            except ValueError as error:  # e.g. a key both a value and the parent of others: say, never crash
                logger.warning("tally: %s were not added to the experiment's config: %s", what, error)

    def close(self, status: str) -> None:
        """End a run this holder started (a user's run stays open), and the client it made."""
        if self._run is None or self._closed or not self._owned:
            return
        self._closed = True
        try:
            self._run.close(run_status(status))
        finally:
            if self._own_client is not None:
                self._own_client.close()
                self._own_client = None
