"""listExperiments' `order_by`, read once into what the repository sorts by and the cursor's shape.

`created_at` / `-created_at`, `name` / `-name`, `metric:<name>:<last|min|max>` and its `-` twin (the contract's
pattern has already checked the text). A descending order is the ascending one reversed, ties (creation order)
included, except that experiments without the metric come after all the others in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CREATED", "ExperimentOrder", "parse_order"]


@dataclass(frozen=True, slots=True)
class ExperimentOrder:
    text: str
    """The `order_by` as sent (a cursor is bound to it)."""
    by: Literal["created_at", "name", "metric"]
    descending: bool
    metric: str | None = None
    value: Literal["last", "min", "max"] | None = None

    @property
    def cursor_family(self) -> str:
        """The cursor shape of this order (see `tally_server.pagination`)."""
        return {
            "created_at": "experiments",
            "name": "experiments_by_name",
            "metric": "experiments_by_metric",
        }[self.by]


CREATED = ExperimentOrder("created_at", "created_at", False)


def parse_order(text: str | None) -> ExperimentOrder:
    if text is None or text == "created_at":
        return CREATED
    descending = text.startswith("-")
    body = text[1:] if descending else text
    if body == "created_at":
        return ExperimentOrder(text, "created_at", descending)
    if body == "name":
        return ExperimentOrder(text, "name", descending)
    # metric:<name>:<value>; the name may itself hold ':'
    metric, _, value = body.removeprefix("metric:").rpartition(":")
    if not body.startswith("metric:") or not metric or value not in ("last", "min", "max"):
        raise ValueError(f"not an experiment order: {text!r}")  # the contract's pattern refuses it first
    return ExperimentOrder(text, "metric", descending, metric, value)  # type: ignore[arg-type]
