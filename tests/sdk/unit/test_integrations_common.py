"""What the framework integrations share (`tally.integrations._common`), with no framework: metric values as
frameworks hand them, configs cut to the metadata's limit, end statuses."""

from __future__ import annotations

import json
import logging

import pytest

from tally.integrations._common import fit_config, flat_items, metric_values, run_status


class OneElement:
    """Stands for a one-element tensor: `.item()` gives the number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


class ManyElements:
    def item(self) -> float:
        raise ValueError("only one element tensors can be converted to Python scalars")


def test_numbers_are_kept_and_the_rest_left_out_with_one_warning_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warned: set[str] = set()
    logs = {
        "loss": 0.5,
        "step": 3,
        "tensor": OneElement(0.25),
        "name": "bert",
        "nan": float("nan"),
        "flag": True,
        "array": ManyElements(),
        "val acc": 0.9,
    }
    with caplog.at_level(logging.WARNING, logger="tally"):
        first = metric_values(logs, warned, "epoch/")
        again = metric_values(logs, warned, "epoch/")
    assert first == again == {"epoch/loss": 0.5, "epoch/step": 3, "epoch/tensor": 0.25, "epoch/val_acc": 0.9}
    assert len(caplog.records) == 5  # name, nan, flag, array left out; "val acc" renamed: once each
    assert any("val acc'" in r.getMessage() and "'epoch/val_acc'" in r.getMessage() for r in caplog.records)


def test_a_config_is_cut_to_its_budget_in_order_and_secrets_are_never_kept() -> None:
    items = [
        ("lr", 0.1),
        ("hub_token", "<HUB_TOKEN>"),
        ("none", None),
        ("empty", []),
        *flat_items({"big": "x" * 50}),
    ]
    items += [(f"k{i}", i) for i in range(100)]
    chosen, left_out = fit_config(items, budget=120)
    assert list(chosen)[:2] == ["lr", "big"]
    assert "hub_token" not in chosen
    assert len(json.dumps(chosen, separators=(",", ":"))) <= 120
    assert left_out == 100 - (len(chosen) - 2)


def test_nested_hyperparameters_become_dotted_keys_and_objects_their_str() -> None:
    items = flat_items({"optim": {"lr": 0.1, "betas": (0.9, 0.99)}, "model": object, "ok": None})
    assert items[:2] == [("optim.lr", 0.1), ("optim.betas", [0.9, 0.99])]
    assert items[2] == ("model", str(object))
    assert items[3] == ("ok", None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("success", "completed"), ("finished", "completed"), ("failed", "failed"), ("aborted", "cancelled")],
)
def test_end_statuses(given: str, expected: str) -> None:
    assert run_status(given) == expected
