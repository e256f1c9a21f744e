"""`tally artifacts`: upload, list, download and delete the files attached to an experiment."""

from __future__ import annotations

from pathlib import Path

import click

from tally._pagination import MAX_PAGE_SIZE
from tally.cli._app import settings
from tally.cli._confirm import confirm_or_abort, yes_option
from tally.cli._output import Output, json_option

__all__ = ["artifacts_group"]

_COLUMNS = ("id", "name", "size_bytes", "sha256", "created_at")


@click.group("artifacts")
def artifacts_group() -> None:
    """Files attached to an experiment: checkpoints, configs, plots."""


@artifacts_group.command("upload")
@click.argument("experiment_id")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="The artifact's name [default: the file's name].")
@json_option
@click.pass_context
def upload(ctx: click.Context, experiment_id: str, path: Path, name: str | None, as_json: bool) -> None:
    """Upload a file (streamed, checked by sha256) and print the artifact's id.

    \b
    Examples:
      tally artifacts upload exp_... ./checkpoints/epoch-3.pt
      tally artifacts upload exp_... ./config.yaml --name config/train.yaml
    """
    with settings(ctx).client() as client:
        artifact = client.artifacts.upload(experiment_id, path, name=name)
    if as_json:
        Output(True).document(artifact)
    else:
        click.echo(artifact.id)


@artifacts_group.command("list")
@click.argument("experiment_id")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many.")
@json_option
@click.pass_context
def list_(ctx: click.Context, experiment_id: str, limit: int | None, as_json: bool) -> None:
    """An experiment's artifacts, oldest first.

    \b
    Examples:
      tally artifacts list exp_...
      tally artifacts list exp_... --json | jq -r .name
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        found = client.artifacts.list(
            experiment_id, limit=limit, page_size=MAX_PAGE_SIZE if limit is None else None
        )
        out.listing(found, _COLUMNS, title="artifacts", empty="no artifacts")


@artifacts_group.command("download")
@click.argument("experiment_id")
@click.argument("artifact_id")
@click.option(
    "--to",
    "to",
    type=click.Path(path_type=Path),
    default=None,
    help="The file to write [default: the artifact's name's last part, in the current directory].",
)
@click.pass_context
def download(ctx: click.Context, experiment_id: str, artifact_id: str, to: Path | None) -> None:
    """Download an artifact's content to a file (checked by sha256; a cut download leaves no file).

    \b
    Examples:
      tally artifacts download exp_... art_...
      tally artifacts download exp_... art_... --to ./restored.pt
    """
    with settings(ctx).client() as client:
        if to is None:
            to = Path(Path(client.artifacts.get(experiment_id, artifact_id).name).name)
        written = client.artifacts.download(experiment_id, artifact_id, to=to)
    click.echo(str(written))


@artifacts_group.command("delete")
@click.argument("experiment_id")
@click.argument("artifact_id")
@yes_option
@click.pass_context
def delete(ctx: click.Context, experiment_id: str, artifact_id: str, yes: bool) -> None:
    """Delete an artifact; asks first (--yes to skip).

    \b
    Examples:
      tally artifacts delete exp_... art_...
      tally artifacts delete exp_... art_... --yes
    """
    with settings(ctx).client() as client:
        artifact = client.artifacts.get(experiment_id, artifact_id)  # a missing one fails before asking
        confirm_or_abort(f"Delete artifact {artifact.id} ({artifact.name!r})? This cannot be undone.", yes)
        client.artifacts.delete(experiment_id, artifact_id)
    click.echo(f"deleted {artifact_id}")
