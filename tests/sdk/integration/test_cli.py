"""Every `tally` command against the live reference server: output for people and for scripts, exit codes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tally import Tally
from tally.cli import cli
from tally_server import RunningServer

from ..conftest import unique

pytestmark = pytest.mark.integration


def test_login_validates_then_writes_the_file(live_server: RunningServer, tmp_path: Path) -> None:
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["auth", "login", "--api-key", "tk_org_wrong", "--base-url", live_server.url]
    )
    assert refused.exit_code != 0
    assert "not accepted" in refused.output
    path = tmp_path / "config" / "credentials.json"
    assert not path.exists()

    result = runner.invoke(
        cli, ["auth", "login", "--api-key", live_server.api_key, "--base-url", live_server.url]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text()) == {"api_key": live_server.api_key, "base_url": live_server.url}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert live_server.api_key not in result.output

    status = runner.invoke(cli, ["auth", "status"])
    assert status.exit_code == 0, status.output
    assert f"file:{path}" in status.output
    assert live_server.url in status.output


def test_status_without_credentials_says_what_to_set() -> None:
    result = CliRunner().invoke(cli, ["auth", "status"])
    assert result.exit_code == 3
    assert "TALLY_API_KEY" in result.output


def test_serve_is_loaded_lazily() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "reference server" in result.output


# ---- every command against the live server -----------------------------------------------------------------
@pytest.fixture
def env(live_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> RunningServer:
    """Credentials in the environment, as a user's shell would have them (resolved by the SDK, not click)."""
    monkeypatch.setenv("TALLY_API_KEY", live_server.api_key)
    monkeypatch.setenv("TALLY_BASE_URL", live_server.url)
    return live_server


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture
def runs(env: RunningServer, sync_client: Tally) -> dict[str, Any]:
    """A folder tree with two experiments holding a `loss` curve (train and val) each."""
    top = sync_client.folders.create(unique("cli-top"))
    child = sync_client.folders.create(unique("cli-child"), parent_id=top.id)
    ids = []
    for index, lr in enumerate((0.1, 0.3)):
        experiment = sync_client.experiments.create(unique(f"cli-run{index}"), folder_id=child.id)
        events = [
            {"name": "loss", "value": 2.0 / (1 + lr * step), "step": step, "metadata": {"split": split}}
            for step in range(50)
            for split in ("train", "val")
        ]
        sync_client.metrics.ingest(experiment.id, events)
        ids.append(experiment.id)
    names = [sync_client.experiments.get(i).name for i in ids]
    return {"top": top, "child": child, "ids": ids, "names": names}


def test_folders_tree_and_create(runs: dict[str, Any]) -> None:
    top, child = runs["top"], runs["child"]
    created = run("folders", "create", unique("cli-leaf"), "--parent", child.id).output.strip()
    assert created.startswith("fld_")
    tree = json.loads(run("folders", "tree", "--root", top.id, "--experiments", "--json").output)
    assert [node["id"] for node in tree] == [child.id]
    assert {e["id"] for e in tree[0]["experiments"]} == set(runs["ids"])
    assert [node["id"] for node in tree[0]["children"]] == [created]
    plain = run("folders", "tree", "--root", top.id).output
    assert f"{child.name}/\t{child.id}" in plain
    assert f"  {tree[0]['children'][0]['name']}/" in plain  # indented under its parent
    run("folders", "tree", "--root", "fld_missing", code=4)


def test_experiments_list_show_create_status_move(runs: dict[str, Any]) -> None:
    child = runs["child"]
    listed = json_lines(run("experiments", "list", "--folder", child.id, "--json").output)
    assert [e["id"] for e in listed] == runs["ids"]
    assert set(listed[0]) >= {"id", "name", "status", "folder_id", "created_at", "metadata"}
    prefix = runs["names"][0]
    assert [
        e["id"] for e in json_lines(run("experiments", "list", "--name-prefix", prefix, "--json").output)
    ] == [runs["ids"][0]]
    table = run("experiments", "list", "--folder", child.id).output.splitlines()
    assert table[0].split("\t") == ["id", "name", "status", "folder_id", "created_at", "ended_at"]
    assert len(table) == 3

    new_id = run(
        "experiments", "create", unique("cli-new"), "--metadata", "lr=0.1", "--folder", child.id
    ).output
    new_id = new_id.strip()
    shown = json.loads(run("experiments", "show", new_id, "--json").output)
    assert shown["metadata"] == {"lr": "0.1"}
    assert shown["status"] == "running"
    people = run("experiments", "show", runs["ids"][0]).output
    assert f"folder:      {child.name} ({child.id})" in people
    assert "metrics:     loss" in people

    assert run("experiments", "set-status", new_id, "completed").output.strip() == f"{new_id} completed"
    assert new_id in run("experiments", "list", "--status", "completed", "--json").output
    refused = run("experiments", "set-status", new_id, "failed", code=1)
    assert "invalid_transition" in refused.output
    assert len(refused.output.strip().splitlines()) == 1

    moved = json.loads(run("experiments", "move", new_id, "--root", "--json").output)
    assert moved["folder_id"] is None
    assert (
        run("experiments", "move", new_id, "--folder", child.id).output.strip() == f"{new_id} -> {child.id}"
    )
    usage = run("experiments", "move", new_id, code=2)
    assert "--folder" in usage.output
    run("experiments", "list", "--status", "paused", code=2)


def test_experiments_list_order_by(runs: dict[str, Any]) -> None:
    child = runs["child"]
    newest = json_lines(
        run("experiments", "list", "--folder", child.id, "--order-by", "-created_at", "--json").output
    )
    assert [e["id"] for e in newest] == runs["ids"][::-1]
    # run0's loss falls more slowly (lr 0.1): its min is the higher one
    by_min = run(
        "experiments", "list", "--folder", child.id, "--order-by", "-metric:loss:min", "--json"
    ).output
    assert [e["id"] for e in json_lines(by_min)] == runs["ids"]
    refused = run("experiments", "list", "--order-by", "loss", code=1)
    assert "order_by" in refused.output

    prefix = unique("cli-meta")
    first = run("experiments", "create", f"{prefix}-a", "--metadata", "optim=adam").output.strip()
    run("experiments", "create", f"{prefix}-b", "--metadata", "optim=sgd")
    listed = run("experiments", "list", "--name-prefix", prefix, "--metadata", "optim=adam", "--json").output
    assert [e["id"] for e in json_lines(listed)] == [first]
    assert (
        len(
            json_lines(
                run("experiments", "list", "--name-prefix", prefix, "--metadata", "optim", "--json").output
            )
        )
        == 2
    )


def test_experiments_summary(runs: dict[str, Any]) -> None:
    first = runs["ids"][0]
    found = json_lines(run("experiments", "summary", first, "--json").output)
    assert [(m["name"], m["metadata"], m["count"]) for m in found] == [
        ("loss", {"split": "train"}, 50),
        ("loss", {"split": "val"}, 50),
    ]
    assert (found[0]["first_step"], found[0]["last_step"], found[0]["max"]) == (0, 49, 2.0)
    table = run("experiments", "summary", first).output.splitlines()
    assert table[0].split("\t") == [
        "name", "metadata", "count", "first_step", "last_step", "last", "min", "max", "last_logged_at"
    ]  # fmt: skip
    assert table[1].split("\t")[:5] == ["loss", "split=train", "50", "0", "49"]
    assert json_lines(run("experiments", "summary", first, "--name", "other", "--json").output) == []
    run("experiments", "summary", "exp_missing", code=4)


def test_metrics_list_compare_catalog_values(runs: dict[str, Any]) -> None:
    first, second = runs["ids"]
    points = json_lines(
        run(
            "metrics", "list", first, "--name", "loss", "--metadata", "split=val", "--max-step", "4", "--json"
        ).output
    )
    assert [p["step"] for p in points] == [0, 1, 2, 3, 4]
    assert {p["metadata"]["split"] for p in points} == {"val"}
    assert len(run("metrics", "list", first, "--limit", "7").output.splitlines()) == 8  # header + 7

    compared = json.loads(
        run(
            "metrics", "compare", first, second, "--name", "loss", "--metadata", "split=train", "--json"
        ).output
    )
    assert [s["experiment_id"] for s in compared["series"]] == [first, second]
    assert len(compared["rows"]) == 50
    assert compared["truncated"] is False
    table = run(
        "metrics", "compare", first, second, "--name", "loss", "--metadata", "split=train", "--max-step", "2"
    )
    lines = table.output.splitlines()
    assert lines[0].split("\t") == ["step", *runs["names"]]
    assert lines[1].split("\t") == ["0", "2", "2"]

    catalog = json_lines(run("metrics", "catalog", "--experiment", first, "--json").output)
    assert [(c["name"], c["count"], c["metadata_keys"]) for c in catalog] == [("loss", 100, ["split"])]
    assert (
        run("metrics", "catalog", "--folder", runs["top"].id)
        .output.splitlines()[1]
        .startswith("loss\t200\t2")
    )

    values = json_lines(run("metrics", "values", "loss", "split", "--experiment", first, "--json").output)
    assert values == [{"value": "train", "count": 50}, {"value": "val", "count": 50}]
    assert "train\t50" in run("metrics", "values", "loss", "split", "--experiment", first).output


def test_ingestion_keys_list_create_revoke(runs: dict[str, Any], live_server: RunningServer) -> None:
    experiment = runs["ids"][0]
    created = json.loads(run("ingestion-keys", "create", experiment, "--name", "cli-key", "--json").output)
    assert created["token"].startswith("tk_ing_")
    assert created["name"] == "cli-key"
    token = run("ingestion-keys", "create", experiment).stdout.strip()
    assert token.startswith("tk_ing_")
    with Tally(api_key=token, base_url=live_server.url) as holder:  # the printed token works
        assert holder.auth.status().experiment_id == experiment
    listed = json_lines(run("ingestion-keys", "list", experiment, "--json").output)
    assert created["id"] in {k["id"] for k in listed}
    assert all("token" not in k for k in listed)
    revoked = json.loads(run("ingestion-keys", "revoke", created["id"], "--json").output)
    assert revoked["revoked_at"] is not None
    assert created["id"] in run("ingestion-keys", "revoke", created["id"]).output
    run("ingestion-keys", "revoke", "ik_missing", code=4)


def test_annotations_list_create(runs: dict[str, Any]) -> None:
    experiment = runs["ids"][1]
    first = run(
        "annotations", "create", experiment, "lr dropped", "--step", "30", "--metadata", "who=cli"
    ).output
    again = run(
        "annotations", "create", experiment, "lr dropped", "--step", "30", "--metadata", "who=cli"
    ).output
    assert first == again  # idempotent by client_event_id
    listed = json_lines(run("annotations", "list", experiment, "--json").output)
    assert [(a["text"], a["step"], a["metadata"]) for a in listed] == [("lr dropped", 30, {"who": "cli"})]
    assert "lr dropped" in run("annotations", "list", experiment).output


def test_auth_status_json(env: RunningServer) -> None:
    status = json.loads(run("auth", "status", "--json").output)
    assert status["credential_source"] == "env:TALLY_API_KEY"
    assert status["base_url"] == env.url
    assert status["key_kind"] == "org"
    assert env.api_key not in run("auth", "status").output


def test_global_options_win_over_the_environment(env: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_API_KEY", "tk_org_not_this_one")
    refused = run("auth", "status", code=3)
    assert "tally auth login" in refused.output
    status = json.loads(run("--api-key", env.api_key, "auth", "status", "--json").output)
    assert status["credential_source"] == "argument"


def test_unreachable_server_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TALLY_API_KEY", "tk_org_whatever")
    result = run("--base-url", f"http://127.0.0.1:{port}", "experiments", "list", code=5)
    assert "TALLY_BASE_URL" in result.output


def test_rich_tables_for_people(runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    output = run("experiments", "list", "--folder", runs["child"].id).output
    assert "┏" in output
    assert runs["names"][0] in output
    tree = run("folders", "tree", "--root", runs["top"].id).output
    assert "└──" in tree
    assert runs["child"].name in tree


def test_help_has_examples_and_completion_works() -> None:
    root = run("--help").output
    for group in (
        "folders", "experiments", "metrics", "ingestion-keys", "annotations", "artifacts", "auth", "serve"
    ):  # fmt: skip
        assert group in root
    assert "Exit codes" in root
    for command in (
        ["folders", "tree"],
        ["experiments", "list"],
        ["experiments", "set-status"],
        ["metrics", "plot"],
        ["metrics", "compare"],
        ["ingestion-keys", "create"],
        ["annotations", "create"],
        ["auth", "status"],
    ):
        assert "Examples:" in run(*command, "--help").output, command
    script = run("completion", "bash").output
    assert "_TALLY_COMPLETE" in script
    completed = CliRunner().invoke(
        cli,
        [],
        env={"_TALLY_COMPLETE": "bash_complete", "COMP_WORDS": "tally exp", "COMP_CWORD": "1"},
        prog_name="tally",
    )
    assert "experiments" in completed.output


def test_console_script_runs_in_a_fresh_process(env: RunningServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tally.cli", "auth", "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["organization_name"]


def test_serve_without_the_server_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tally_server.cli", None)  # as if the [server] extra were not installed
    result = run("serve", "--help", code=3)
    assert "pip install 'tally-metrics[server]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_compare_reads_past_the_servers_row_limit(env: RunningServer, sync_client: Tally) -> None:
    experiment = sync_client.experiments.create(unique("cli-long"))
    steps = 10_050  # over the 10,000 rows one compare call answers
    sync_client.metrics.ingest(
        experiment.id, [{"name": "m", "value": float(s), "step": s} for s in range(steps)]
    )
    compared = json.loads(run("metrics", "compare", experiment.id, "--name", "m", "--json").output)
    assert [row["step"] for row in compared["rows"]] == list(range(steps))
    assert compared["truncated"] is False
    assert compared["series"][0]["points"] == steps


def test_help_lists_a_command_whose_extra_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tally_server.cli", None)
    listing = run("--help").output
    assert "serve" in listing
    assert "pip install 'tally-metrics[server]'" in listing
    assert "tally-metrics[server]" in run("serve", "--port", "1", code=3).output


def test_artifacts_upload_list_download_delete(
    env: RunningServer, sync_client: Tally, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = sync_client.experiments.create(unique("cli-artifacts")).id
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(50_000))
    artifact_id = run("artifacts", "upload", experiment, str(source), "--name", "ckpt/w.bin").output.strip()
    assert artifact_id.startswith("art_")
    listed = json_lines(run("artifacts", "list", experiment, "--json").output)
    assert [(a["id"], a["name"], a["size_bytes"]) for a in listed] == [(artifact_id, "ckpt/w.bin", 50_000)]
    assert "ckpt/w.bin" in run("artifacts", "list", experiment).output
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    written = run("artifacts", "download", experiment, artifact_id).output.strip()
    assert Path(written).name == "w.bin"
    assert (tmp_path / "out" / "w.bin").read_bytes() == source.read_bytes()
    assert "Examples:" in run("artifacts", "upload", "--help").output
    run("artifacts", "delete", experiment, artifact_id, "--yes")
    assert json_lines(run("artifacts", "list", experiment, "--json").output) == []
    run("artifacts", "download", experiment, artifact_id, code=4)
