"""A Hugging Face `transformers` `TrainerCallback`: `Trainer(..., callbacks=[TallyCallback()])`.

    from transformers import Trainer, TrainingArguments
    from tally.integrations.transformers import TallyCallback

    args = TrainingArguments("out", logging_steps=10, report_to="none")
    trainer = Trainer(model, args, train_dataset=data, callbacks=[TallyCallback(tags=["bert"])])
    trainer.train()

The conventions are those of transformers' own `WandbCallback` and `MLflowCallback`: everything happens on the
world's process zero only (`state.is_world_process_zero`; other processes of a distributed job log nothing);
`on_train_begin` starts the run, named `args.run_name` unless you name it, with the `TrainingArguments` and the
model's config (`model.config`) as its config, under `args.` and `model.`; `on_log` logs the numeric entries of
`logs` (loss, learning_rate, grad_norm, eval_*) at `state.global_step`, under the names the Trainer prints (as
MLflow does; strings are left out with one warning); `on_train_end` closes the run (completed). A later
`trainer.evaluate()` logs to the same experiment, reopened and closed again once its metrics are logged (no hook
marks the end of an evaluation outside training).

The experiment's metadata is at most 8 KiB, less than the ~150 `TrainingArguments` take: the config keeps the
arguments that shape training first (learning rate, batch size, steps, schedule, precision, seed), then the
model's config, then the other arguments while they fit; tokens are never stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tally._extras import missing_extra

from ._common import RunHolder, flat_items, metric_values

if TYPE_CHECKING:
    from tally import Tally
    from tally.run import Run

try:
    from transformers import TrainerCallback
except ModuleNotFoundError as error:
    raise missing_extra(error, "transformers", "tally.integrations.transformers") from error

__all__ = ["TallyCallback"]

DEFAULT_NAME = "transformers"
KEY_ARGUMENTS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "optim",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "seed",
    "bf16",
    "fp16",
    "eval_strategy",
    "logging_steps",
    "run_name",
)
"""The `TrainingArguments` that go in the config first (the metadata cannot hold them all)."""


class TallyCallback(TrainerCallback):  # type: ignore[misc]  # transformers is not type-checked here
    """Logs a `Trainer`'s metrics and arguments to one Tally experiment, from the world's process zero.

    `name`: the experiment's (default: `args.run_name`, else "transformers"); `client`: a `Tally` (default: one
    made from the environment, closed with the run); `run`: log to a run you started and will close yourself
    instead; other keywords (`experiment_id=`, `resume=`, `tags=`, `config=`, `metadata=`, ...) go to
    `client.run(...)`."""

    def __init__(
        self,
        name: str | None = None,
        *,
        client: Tally | None = None,
        run: Run | None = None,
        **run_options: Any,
    ) -> None:
        self._holder = RunHolder(name, client=client, run=run, options=run_options)
        self._training = False

    @property
    def experiment_id(self) -> str | None:
        """The id of the experiment logged to, once the server has it (also after the run is closed)."""
        return self._holder.experiment_id

    @property
    def run(self) -> Run | None:
        """The run logged to (None before training starts, and on other processes)."""
        return self._holder.get() if self._holder.started else None

    def _start(self, args: Any, model: Any) -> None:
        holder = self._holder
        if holder.started:
            return
        holder.default_name(getattr(args, "run_name", None) or DEFAULT_NAME)
        holder.get()
        arguments = args.to_dict()  # tokens masked by transformers itself; `fit_config` drops them anyway
        items = [(f"args.{key}", arguments[key]) for key in KEY_ARGUMENTS if key in arguments]
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            items.extend(flat_items(model_config.to_dict(), "model."))
        items.extend(flat_items({k: v for k, v in arguments.items() if k not in KEY_ARGUMENTS}, "args."))
        holder.add_config(items, "the training arguments and model config")

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._training = True
        if state.is_world_process_zero:
            self._start(args, model)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if not self._holder.ever_started:  # evaluate() before any train()
            self._start(args, kwargs.get("model"))
        self._holder.log(metric_values(logs, self._holder.warned), state.global_step)
        if not self._training:  # evaluate() or predict() on their own: no end hook follows, so end it now
            self._holder.close("completed")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        if state.is_world_process_zero:
            self._holder.close("completed")
