"""The lifecycle commands of `tally` (contract 1.5.0) against the live reference server: deleting (with its
confirmation), and the commands that give the CLI what the SDK already has."""

from __future__ import annotations

import json
from typing import Any

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


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


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


# ---- what the SDK already had ----------------------------------------------------------------------------------
def test_experiments_archive_unarchive_and_list_include_archived_and_tag(sync_client: Tally) -> None:
    tag = unique("t")
    kept = sync_client.experiments.create(unique("cli-kept"), tags=[tag])
    shelved = sync_client.experiments.create(unique("cli-shelved"), tags=[tag])
    assert run("experiments", "archive", shelved.id).output.strip() == f"{shelved.id} archived"
    assert sync_client.experiments.get(shelved.id).archived_at is not None

    def listed(*extra: str) -> list[str]:
        return [
            e["id"] for e in json_lines(run("experiments", "list", "--tag", tag, *extra, "--json").output)
        ]

    assert listed() == [kept.id]
    assert listed("--include-archived") == [kept.id, shelved.id]
    archived = json.loads(run("experiments", "unarchive", shelved.id, "--json").output)
    assert archived["archived_at"] is None
    assert listed() == [kept.id, shelved.id]
    header = run("experiments", "list", "--tag", tag, "--include-archived").output.splitlines()[0]
    assert header.split("\t")[-1] == "archived_at"  # shown when archived ones are


def test_experiments_update_and_tag(sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(
        unique("cli-upd"), description="d", metadata={"lr": 1}, tags=["a"]
    )
    new_name = unique("cli-renamed")
    assert (
        run("experiments", "update", experiment.id, "--name", new_name).output.strip()
        == f"{experiment.id} updated"
    )
    updated = json.loads(
        run(
            "experiments", "update", experiment.id, "--description", "new", "--metadata", "seed=7", "--json"
        ).output
    )
    assert (updated["name"], updated["description"], updated["metadata"]) == (new_name, "new", {"seed": "7"})
    run("experiments", "update", experiment.id, "--clear-description", "--clear-metadata")
    got = sync_client.experiments.get(experiment.id)
    assert (got.description, got.metadata, got.tags) == (None, {}, ("a",))
    assert "give --name" in run("experiments", "update", experiment.id, code=2).output
    assert (
        "not both"
        in run("experiments", "update", experiment.id, "--metadata", "a=1", "--clear-metadata", code=2).output
    )

    tagged = run("experiments", "tag", experiment.id, "--add", "b", "--add", "c", "--add", "a").output.strip()
    assert tagged == f"{experiment.id} tags: a, b, c"
    assert sync_client.experiments.get(experiment.id).tags == ("a", "b", "c")
    assert json.loads(run("experiments", "tag", experiment.id, "--remove", "a", "--json").output)["tags"] == [
        "b",
        "c",
    ]
    assert "give --add or --remove" in run("experiments", "tag", experiment.id, code=2).output
    refused = run("experiments", "tag", experiment.id, "--add", "has space", code=1)
    assert "tags" in refused.output


def test_folders_rename_move_archive(sync_client: Tally) -> None:
    top = sync_client.folders.create(unique("cli-top"))
    other = sync_client.folders.create(unique("cli-other"))
    folder = sync_client.folders.create(unique("cli-f"), parent_id=top.id)
    new_name = unique("cli-renamed")
    assert (
        run("folders", "rename", folder.id, new_name).output.strip() == f"{folder.id} renamed to {new_name}"
    )
    assert sync_client.folders.get(folder.id).name == new_name
    assert (
        run("folders", "move", folder.id, "--parent", other.id).output.strip() == f"{folder.id} -> {other.id}"
    )
    moved = json.loads(run("folders", "move", folder.id, "--root", "--json").output)
    assert moved["parent_id"] is None
    assert "--parent" in run("folders", "move", folder.id, code=2).output
    refused = run("folders", "move", top.id, "--parent", top.id, code=1)  # a cycle: the server's conflict
    assert "conflict" in refused.output

    assert run("folders", "archive", folder.id).output.strip() == f"{folder.id} archived"
    assert sync_client.folders.get(folder.id).archived_at is not None
    assert json.loads(run("folders", "unarchive", folder.id, "--json").output)["archived_at"] is None


def test_every_lifecycle_command_has_examples() -> None:
    for group, commands in {
        "experiments": ("update", "tag", "archive", "unarchive", "delete"),
        "folders": ("rename", "move", "archive", "unarchive", "delete"),
        "annotations": ("show", "update", "delete"),
        "ingestion-keys": ("show",),
    }.items():
        for command in commands:
            assert "Examples:" in run(group, command, "--help").output, (group, command)
