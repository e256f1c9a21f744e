"""A PyTorch Lightning logger: `Trainer(logger=TallyLogger("resnet50"))`.

    from lightning.pytorch import Trainer
    from tally.integrations.lightning import TallyLogger

    trainer = Trainer(logger=TallyLogger("resnet50", tags=["baseline"]), max_epochs=3)
    trainer.fit(model, data)      # self.log(...) in the module: metrics at the trainer's global step

Lightning's own loggers (`MLFlowLogger`, `WandbLogger`) set the conventions followed here: `log_metrics` and
`log_hyperparams` run on rank zero only (`rank_zero_only`; other ranks get a no-op `experiment`), the experiment
is made lazily, on first use (Lightning touches `logger.experiment` in its setup), `log_hyperparams` (what
`save_hyperparameters()` collected) becomes the run's config, `finalize(status)` sets the experiment's status
("success" completed, "failed" failed). `experiment` is the `tally.run.Run`, for `self.logger.experiment.annotate(
...)` in a module; `name` is the experiment's name and `version` its id. Lightning hands `log_metrics` the global
step, which may repeat or go backwards (validation at the same step, gradient accumulation, a resumed fit): every
point is stored, none dropped (wandb drops them with "Step must only increase").

Works with `lightning` (`lightning.pytorch`) and with the older `pytorch_lightning` package, whichever is
installed; `pip install 'tally-metrics[lightning]'` brings `lightning`.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tally._extras import MissingExtraError

from ._common import RunHolder, flat_items, metric_values

if TYPE_CHECKING:
    from tally import Tally
    from tally.run import Run

try:
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
except ModuleNotFoundError as error:
    if error.name is None or not error.name.startswith("lightning"):
        raise
    try:
        from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
        from pytorch_lightning.utilities import rank_zero_only
    except ModuleNotFoundError:
        raise MissingExtraError("lightning", "lightning", "tally.integrations.lightning") from error

__all__ = ["TallyLogger"]

DEFAULT_NAME = "lightning"


class TallyLogger(Logger):  # type: ignore[misc]  # Lightning is not type-checked here
    """Logs a Lightning `Trainer`'s metrics and hyperparameters to one Tally experiment.

    `name`: the experiment's (default "lightning"); `client`: a `Tally` (default: one made from the environment,
    `TALLY_BASE_URL`, `TALLY_API_KEY`, closed with the run); `run`: log to a run you started and will close
    yourself instead; other keywords (`experiment_id=`, `resume=`, `tags=`, `config=`, `metadata=`, ...) go to
    `client.run(...)`."""

    def __init__(
        self,
        name: str | None = None,
        *,
        client: Tally | None = None,
        run: Run | None = None,
        **run_options: Any,
    ) -> None:
        super().__init__()
        self._holder = RunHolder(name, client=client, run=run, options=run_options)
        if run is None:
            self._holder.default_name(DEFAULT_NAME)

    @property
    def name(self) -> str | None:
        """The experiment's name (Lightning puts it in checkpoint paths)."""
        return self._holder.name if self._holder.name is not None else self._holder.experiment_id

    @property
    def version(self) -> str | None:
        """The experiment's id: the run starts here if it has not (as `MLFlowLogger.version` does); None on
        other ranks, and while the server has not answered."""
        if rank_zero_only.rank > 0:
            return None
        if self._holder.ever_started:  # without reopening a finalized run
            return self._holder.experiment_id
        return self.experiment.id  # type: ignore[no-any-return]

    @property
    @rank_zero_experiment  # type: ignore[untyped-decorator]
    def experiment(self) -> Run:
        """The `tally.run.Run` (on rank zero; a no-op stand-in on other ranks), started on first use."""
        return self._holder.get()

    @rank_zero_only  # type: ignore[untyped-decorator]
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """`metrics` at `step` (the trainer's global step); values that are not finite numbers are left out."""
        self._holder.log(metric_values(metrics, self._holder.warned), step)

    @rank_zero_only  # type: ignore[untyped-decorator]
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """The hyperparameters (`save_hyperparameters()`, a dict or Namespace, nested as you like) added to the
        run's config as dotted keys, as much as the experiment's metadata (8 KiB) holds."""
        items = vars(params) if isinstance(params, Namespace) else dict(params)
        self._holder.add_config(flat_items(items), "the hyperparameters")

    @rank_zero_only  # type: ignore[untyped-decorator]
    def finalize(self, status: str) -> None:
        """End the run this logger started: "success" and "finished" (a SLURM requeue) as completed, "failed" as
        failed. Logging after this (`trainer.test()` after `fit()`) reopens the same experiment."""
        self._holder.close(status)
