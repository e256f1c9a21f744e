"""`tally.integrations.keras.TallyCallback` in a real Keras 3 `fit()` (JAX backend, CPU), against the live server."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tally import Tally

pytestmark = [
    pytest.mark.integration,
    pytest.mark.frameworks,
    pytest.mark.filterwarnings("ignore::Warning:keras.*"),
    pytest.mark.filterwarnings("ignore::Warning:jax.*"),
]


def tiny_model() -> tuple[Any, Any, Any]:
    """A one-layer regression and 12 examples; Keras imported here, so that collecting this file imports none."""
    keras = pytest.importorskip("keras")
    np = pytest.importorskip("numpy")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(12, 3)).astype("float32")
    return model, x, x.sum(axis=1, keepdims=True)


def points(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None]]:
    return Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))


def test_fit_logs_batches_and_epochs_on_one_step_axis(sync_client: Tally) -> None:
    model, x, y = tiny_model()
    from tally.integrations.keras import TallyCallback

    callback = TallyCallback("keras-tiny", client=sync_client, tags=["keras"])
    # 9 training examples in batches of 3: 3 batches per epoch; 3 examples for validation.
    model.fit(x, y, epochs=2, batch_size=3, validation_split=0.25, callbacks=[callback], verbose=0)

    experiment_id = callback.experiment_id
    assert experiment_id is not None
    experiment = sync_client.experiments.get(experiment_id)
    assert experiment.status == "completed"
    stored = points(sync_client, experiment_id)
    assert {step for name, step in stored if name == "batch/loss"} == set(range(6))
    assert {step for name, step in stored if name == "batch/mae"} == set(range(6))
    assert {step for name, step in stored if name == "epoch/val_loss"} == {2, 5}  # each epoch's last batch
    assert {step for name, step in stored if name == "epoch/epoch"} == {2, 5}
    config = experiment.metadata["config"]
    assert config["fit"]["epochs"] == 2
    assert config["optimizer"]["learning_rate"] == pytest.approx(0.05)

    # A second fit with the same callback: the same experiment, reopened, its steps going on.
    model.fit(x, y, epochs=1, batch_size=3, callbacks=[callback], verbose=0)
    again = points(sync_client, experiment_id)
    assert {step for name, step in again if name == "batch/loss"} == set(range(10))  # + 4 batches of 3
    assert sync_client.experiments.get(experiment_id).status == "completed"


def test_epochs_only(sync_client: Tally) -> None:
    model, x, y = tiny_model()
    from tally.integrations.keras import TallyCallback

    callback = TallyCallback("keras-epochs", client=sync_client, log_every_n_batches=0)
    model.fit(x, y, epochs=2, batch_size=4, callbacks=[callback], verbose=0)
    stored = points(sync_client, callback.experiment_id or "")
    assert {name for name, _ in stored} == {"epoch/loss", "epoch/mae", "epoch/epoch"}
    assert {step for name, step in stored if name == "epoch/loss"} == {2, 5}


def test_a_bad_batch_interval_is_refused_by_name() -> None:
    pytest.importorskip("keras")
    from tally.integrations.keras import TallyCallback

    with pytest.raises(ValueError, match="log_every_n_batches"):
        TallyCallback("x", log_every_n_batches=-1)
