"""The lifecycle commands of `tally` (contract 1.5.0) against the live reference server: deleting (with its
confirmation), and the commands that give the CLI what the SDK already has."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

import tally
from tally import Tally
from tally.cli import cli
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def env(live_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    return live_server


def run(*args: str, code: int = 0, answer: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=answer)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def test_experiments_delete_asks_first(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("cli-doomed"))
    sync_client.metrics.ingest(experiment.id, [{"name": "loss", "value": 1.0, "step": 0}])

    declined = run("experiments", "delete", experiment.id, answer="n\n", code=1)
    assert "cannot be undone" in declined.output
    assert experiment.name in declined.output
    assert "Aborted" in declined.output
    no_terminal = run("experiments", "delete", experiment.id, code=1)  # stdin at its end: the answer is no
    assert "Aborted" in no_terminal.output
    assert sync_client.experiments.get(experiment.id).id == experiment.id

    accepted = run("experiments", "delete", experiment.id, answer="y\n")
    assert f"deleted {experiment.id}" in accepted.output
    with pytest.raises(tally.NotFoundError):
        sync_client.experiments.get(experiment.id)
    run("experiments", "delete", experiment.id, "--yes", code=4)  # gone: not found

    other = sync_client.experiments.create(unique("cli-doomed"))
    assert run("experiments", "delete", other.id, "--yes").output.strip() == f"deleted {other.id}"
    with pytest.raises(tally.NotFoundError):
        sync_client.experiments.get(other.id)


def test_folders_delete_only_an_empty_one(sync_client: Tally) -> None:
    folder = sync_client.folders.create(unique("cli-fld"))
    child = sync_client.folders.create("child", parent_id=folder.id)
    refused = run("folders", "delete", folder.id, code=1)
    assert "folder_not_empty" in refused.output
    assert "1 folder" in refused.output
    assert run("folders", "delete", child.id).output.strip() == f"deleted {child.id}"
    assert run("folders", "delete", folder.id).output.strip() == f"deleted {folder.id}"
    run("folders", "delete", folder.id, code=4)


def test_annotations_show_update_delete(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("cli-notes"))
    note = sync_client.annotations.create(experiment.id, "lr drop", step=3, metadata={"lr": "0.1"})
    shown = json.loads(run("annotations", "show", experiment.id, note.id, "--json").output)
    assert (shown["id"], shown["text"], shown["step"]) == (note.id, "lr drop", 3)
    assert "lr drop" in run("annotations", "show", experiment.id, note.id).output

    assert run(
        "annotations", "update", experiment.id, note.id, "--text", "lr drop (cosine)"
    ).output.strip() == (f"{note.id} updated")
    updated = json.loads(
        run("annotations", "update", experiment.id, note.id, "--metadata", "why=plateau", "--json").output
    )
    assert (updated["text"], updated["metadata"]) == ("lr drop (cosine)", {"why": "plateau"})
    assert sync_client.annotations.get(experiment.id, note.id).metadata == {"why": "plateau"}
    run("annotations", "update", experiment.id, note.id, "--clear-metadata")
    assert sync_client.annotations.get(experiment.id, note.id).metadata == {}
    assert "give --text" in run("annotations", "update", experiment.id, note.id, code=2).output

    assert "Aborted" in run("annotations", "delete", experiment.id, note.id, answer="n\n", code=1).output
    assert (
        run("annotations", "delete", experiment.id, note.id, "--yes").output.strip() == f"deleted {note.id}"
    )
    assert list(sync_client.annotations.list(experiment.id)) == []
    run("annotations", "show", experiment.id, note.id, code=4)


def test_ingestion_keys_show(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("cli-keys"))
    key = sync_client.ingestion_keys.create(experiment.id, name="trainer")
    shown = run("ingestion-keys", "show", key.id, "--json").output
    assert json.loads(shown)["token_hint"] == key.token_hint
    assert key.token not in shown
    assert "trainer" in run("ingestion-keys", "show", key.id).output
    run("ingestion-keys", "show", "ik_missing", code=4)
