"""`tally.integrations.transformers.TallyCallback` in a real Hugging Face `Trainer`, against the live server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tally import Tally

pytestmark = [
    pytest.mark.integration,
    pytest.mark.frameworks,
    # transformers' and torch's own deprecation notices and advice.
    pytest.mark.filterwarnings("ignore::Warning:transformers.*"),
    pytest.mark.filterwarnings("ignore::Warning:torch.*"),
    pytest.mark.filterwarnings("ignore::Warning:accelerate.*"),
]


def tiny_bert() -> tuple[Any, Any]:
    """A one-layer BERT made from a config (no download) and 8 random examples; imported here, so that collecting
    this file imports no framework."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    examples = [{"input_ids": torch.randint(0, 32, (6,)), "labels": torch.tensor(i % 2)} for i in range(8)]
    return model, examples


def arguments(tmp_path: Path, **options: Any) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        logging_steps=1,
        per_device_train_batch_size=2,
        per_device_eval_batch_size=4,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        hub_token="hf_secret_token_never_stored",
        **options,
    )


def points(client: Tally, experiment_id: str) -> Counter[tuple[str, int | None]]:
    return Counter((p.name, p.step) for p in client.metrics.list(experiment_id, page_size=1000))


def test_train_logs_at_the_global_step_with_arguments_and_model_config(
    sync_client: Tally, tmp_path: Path
) -> None:
    model, examples = tiny_bert()
    from transformers import Trainer

    from tally.integrations.transformers import TallyCallback

    callback = TallyCallback(client=sync_client, tags=["hf"])
    args = arguments(tmp_path, run_name="hf-tiny")
    trainer = Trainer(model=model, args=args, train_dataset=examples, callbacks=[callback])
    trainer.train()

    found = list(sync_client.experiments.list(name_prefix="hf-tiny"))
    assert len(found) == 1
    experiment = sync_client.experiments.get(found[0].id)
    assert experiment.status == "completed"
    assert "hf" in experiment.tags
    stored = points(sync_client, experiment.id)
    assert {step for name, step in stored if name == "loss"} == {1, 2, 3, 4}
    assert {step for name, step in stored if name == "learning_rate"} == {1, 2, 3, 4}
    assert ("train_runtime", 4) in stored  # the Trainer's closing summary
    config = experiment.metadata["config"]
    assert config["args"]["learning_rate"] == 1e-3
    assert config["args"]["max_steps"] == 4
    assert config["model"]["hidden_size"] == 8
    assert "hf_secret_token_never_stored" not in str(experiment.metadata)
    assert "hub_token" not in config["args"]

    trainer.evaluate(examples)  # after on_train_end: the same experiment, reopened, then completed again
    assert ("eval_loss", 4) in points(sync_client, experiment.id)
    assert sync_client.experiments.get(experiment.id).status == "completed"


def test_only_the_world_process_zero_logs(sync_client: Tally, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from transformers import TrainerControl, TrainerState

    from tally.integrations.transformers import TallyCallback

    callback = TallyCallback("hf-other-process", client=sync_client)
    state = TrainerState(is_world_process_zero=False)
    args = arguments(tmp_path)
    callback.on_train_begin(args, state, TrainerControl())
    callback.on_log(args, state, TrainerControl(), logs={"loss": 1.0})
    callback.on_train_end(args, state, TrainerControl())
    assert callback.run is None
    assert not list(sync_client.experiments.list(name_prefix="hf-other-process"))
