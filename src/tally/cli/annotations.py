"""`tally annotations`: list and create notes on an experiment."""

from __future__ import annotations

import click

from tally._pagination import MAX_PAGE_SIZE
from tally.cli._app import settings
from tally.cli._output import Output, json_option
from tally.cli._params import metadata_option, pairs

__all__ = ["annotations_group"]

_COLUMNS = ("id", "step", "timestamp", "text", "metadata")


@click.group("annotations")
def annotations_group() -> None:
    """Free-text notes on an experiment, optionally at a step."""


@annotations_group.command("list")
@click.argument("experiment_id")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many.")
@json_option
@click.pass_context
def list_(ctx: click.Context, experiment_id: str, limit: int | None, as_json: bool) -> None:
    """An experiment's annotations, oldest first.

    \b
    Examples:
      tally annotations list exp_...
      tally annotations list exp_... --json | jq -r .text
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        found = client.annotations.list(
            experiment_id, limit=limit, page_size=MAX_PAGE_SIZE if limit is None else None
        )
        if as_json:
            out.lines(found)
            return
        count = out.table(_COLUMNS, ([getattr(a, c) for c in _COLUMNS] for a in found), title="annotations")
    if count == 0:
        out.note("no annotations")


@annotations_group.command("create")
@click.argument("experiment_id")
@click.argument("text")
@click.option("--step", type=int, help="The training step it refers to.")
@metadata_option("Metadata to attach (repeat the option for several).")
@json_option
@click.pass_context
def create(
    ctx: click.Context,
    experiment_id: str,
    text: str,
    step: int | None,
    metadata: tuple[str, ...],
    as_json: bool,
) -> None:
    """Annotate an experiment; re-running the same command stores it once.

    \b
    Examples:
      tally annotations create exp_... "lr dropped to 1e-4" --step 3000
    """
    with settings(ctx).client() as client:
        annotation = client.annotations.create(
            experiment_id, text, step=step, metadata=pairs(metadata) or None
        )
    if as_json:
        Output(True).document(annotation)
    else:
        click.echo(annotation.id)
