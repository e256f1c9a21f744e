"""A Keras 3 callback: `model.fit(x, y, epochs=3, callbacks=[TallyCallback("mnist")])`, on any backend (JAX,
TensorFlow, PyTorch).

    from tally.integrations.keras import TallyCallback

    model.fit(x, y, epochs=3, validation_split=0.1, callbacks=[TallyCallback("mnist", tags=["cnn"])])

The names and steps follow wandb's `WandbMetricsLogger`: every `log_every_n_batches` training batches (default 1;
0 for epochs only) the batch logs as `batch/<name>` (`batch/loss`: Keras's running mean over the epoch so far), and
at each epoch's end the epoch logs as `epoch/<name>` (`epoch/loss`, `epoch/val_loss`) with `epoch/epoch`. One
step axis for both: the global batch step (batches since the run began, continued on a resumed run), so epoch
points sit at the step of their epoch's last batch. `on_train_begin` starts the run with the fit's parameters
(`epochs`, `steps` per epoch) and the optimizer's config as its config; `on_train_end` closes it (completed). A
later `fit()` with the same callback logs to the same experiment, reopened, its steps continuing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tally._extras import missing_extra

from ._common import RunHolder, flat_items, metric_values

if TYPE_CHECKING:
    from tally import Tally
    from tally.run import Run

try:
    from keras.callbacks import Callback
except ModuleNotFoundError as error:
    raise missing_extra(error, "keras", "tally.integrations.keras") from error

__all__ = ["TallyCallback"]

DEFAULT_NAME = "keras"


class TallyCallback(Callback):  # type: ignore[misc]  # Keras is not type-checked here
    """Logs a Keras `fit()`'s batch and epoch metrics to one Tally experiment.

    `name`: the experiment's (default "keras"); `client`: a `Tally` (default: one made from the environment,
    closed with the run); `run`: log to a run you started and will close yourself instead;
    `log_every_n_batches`: how often batch metrics are logged (0: never); other keywords (`experiment_id=`,
    `resume=`, `tags=`, `config=`, `metadata=`, ...) go to `client.run(...)`."""

    def __init__(
        self,
        name: str | None = None,
        *,
        client: Tally | None = None,
        run: Run | None = None,
        log_every_n_batches: int = 1,
        **run_options: Any,
    ) -> None:
        super().__init__()
        if type(log_every_n_batches) is not int or log_every_n_batches < 0:
            raise ValueError(
                f"log_every_n_batches is {log_every_n_batches!r}: pass a whole number of batches, or 0 for none"
            )
        self._holder = RunHolder(name, client=client, run=run, options=run_options)
        if run is None:
            self._holder.default_name(DEFAULT_NAME)
        self.log_every_n_batches = log_every_n_batches
        self._epoch_start = 0  # the global step of the current epoch's first batch
        self._next_step = 0

    @property
    def experiment_id(self) -> str | None:
        """The id of the experiment logged to, once the server has it (also after the run is closed)."""
        return self._holder.experiment_id

    @property
    def run(self) -> Run | None:
        """The run logged to (None before training starts)."""
        return self._holder.get() if self._holder.started else None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        holder = self._holder
        first = not holder.ever_started
        run = holder.get()
        self._next_step = run.step  # 0, or where a resumed experiment's steps left off
        if first:
            items = flat_items({k: v for k, v in (self.params or {}).items() if k != "verbose"}, "fit.")
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is not None and hasattr(optimizer, "get_config"):
                items.extend(flat_items(optimizer.get_config(), "optimizer."))
            holder.add_config(items, "the fit's parameters and optimizer config")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = self._next_step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # `batch` is the index within the epoch (the last one of a `steps_per_execution` group).
        step = self._epoch_start + batch
        self._next_step = step + 1
        every = self.log_every_n_batches
        if every and logs and (batch + 1) % every == 0:
            self._holder.log(metric_values(logs, self._holder.warned, "batch/"), step)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = metric_values(logs or {}, self._holder.warned, "epoch/")
        values["epoch/epoch"] = epoch
        self._holder.log(values, max(self._next_step - 1, 0))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._holder.close("completed")
