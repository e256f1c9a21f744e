"""`tally.integrations.lightning.TallyLogger` in a real Lightning `Trainer`, against the live server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tally import Tally

pytestmark = [
    pytest.mark.integration,
    pytest.mark.frameworks,
    # Lightning's own deprecation notices about torch's APIs, and its advice (workers, small datasets).
    pytest.mark.filterwarnings("ignore::Warning:lightning.*"),
    pytest.mark.filterwarnings("ignore::Warning:torch.*"),
]


def tiny_module() -> Any:
    """A LightningModule class, made here so that collecting this file imports no framework (each pytest-xdist
    worker collects every file)."""
    torch = pytest.importorskip("torch")
    L = pytest.importorskip("lightning.pytorch")

    class TinyRegression(L.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self, lr: float = 0.05, hidden: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train/loss", loss)
            self.log("weird name!", 1.0)  # a name the API refuses: logged as weird_name_
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return TinyRegression()


def loader() -> Any:
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=generator)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=4)


def trainer(tmp_path: Path, logger: Any, **options: Any) -> Any:
    from lightning.pytorch import Trainer

    return Trainer(
        logger=logger,
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )


def points(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None]]:
    return Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))


def test_fit_logs_metrics_at_the_global_step_and_hyperparameters_as_config(
    sync_client: Tally, tmp_path: Path
) -> None:
    model = tiny_module()
    from tally.integrations.lightning import TallyLogger

    logger = TallyLogger("lightning-tiny", client=sync_client, tags=["lightning"])
    trainer(tmp_path, logger, max_epochs=2).fit(model, loader(), loader())

    experiment_id = logger.version
    assert experiment_id is not None
    assert logger.name == "lightning-tiny"
    stored = points(sync_client, experiment_id)
    assert {step for name, step in stored if name == "train/loss"} == set(range(8))  # 4 batches x 2 epochs
    assert {step for name, step in stored if name == "val/loss"} == {3, 7}  # after each epoch
    assert stored[("weird_name_", 0)] == 1
    experiment = sync_client.experiments.get(experiment_id)
    assert experiment.status == "completed"
    assert "lightning" in experiment.tags
    assert experiment.metadata["config"] == {"lr": 0.05, "hidden": 4}


def test_a_test_after_fit_reopens_the_same_experiment(sync_client: Tally, tmp_path: Path) -> None:
    model = tiny_module()
    from tally.integrations.lightning import TallyLogger

    logger = TallyLogger("lightning-fit-then-test", client=sync_client)
    run = trainer(tmp_path, logger, max_steps=2)
    run.fit(model, loader())
    experiment_id = logger.version
    run.validate(model, loader(), verbose=False)  # after fit's finalize("success"): logs again
    assert logger.version == experiment_id
    assert ("val/loss", 2) in points(sync_client, experiment_id or "")
    assert sync_client.experiments.get(experiment_id or "").status == "completed"


def test_a_fit_that_raises_marks_the_experiment_failed(sync_client: Tally, tmp_path: Path) -> None:
    model = tiny_module()
    from tally.integrations.lightning import TallyLogger

    def broken(batch: Any, batch_idx: int) -> Any:
        if batch_idx == 2:
            raise RuntimeError("diverged")
        return original(batch, batch_idx)

    original, model.training_step = model.training_step, broken
    logger = TallyLogger("lightning-fails", client=sync_client)
    with pytest.raises(RuntimeError, match="diverged"):
        trainer(tmp_path, logger, max_epochs=1).fit(model, loader())
    experiment_id = logger.version or ""
    assert sync_client.experiments.get(experiment_id).status == "failed"
    assert {step for name, step in points(sync_client, experiment_id) if name == "train/loss"} == {0, 1}


def test_other_ranks_log_nothing(sync_client: Tally, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lightning.pytorch")
    from lightning.pytorch.utilities import rank_zero_only

    from tally.integrations.lightning import TallyLogger

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = TallyLogger("lightning-rank-1", client=sync_client)
    logger.log_hyperparams({"lr": 1.0})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.finalize("success")
    assert logger.version is None
    assert not list(sync_client.experiments.list(name_prefix="lightning-rank-1"))
