"""`tally annotations`: list, show, create, update and delete notes on an experiment."""

from __future__ import annotations

from typing import Any

import click

from tally._pagination import MAX_PAGE_SIZE
from tally.cli._app import settings
from tally.cli._confirm import confirm_or_abort, yes_option
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
        out.listing(found, _COLUMNS, title="annotations", empty="no annotations")


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


@annotations_group.command("show")
@click.argument("experiment_id")
@click.argument("annotation_id")
@json_option
@click.pass_context
def show(ctx: click.Context, experiment_id: str, annotation_id: str, as_json: bool) -> None:
    """One annotation of an experiment.

    \b
    Examples:
      tally annotations show exp_... ann_...
      tally annotations show exp_... ann_... --json | jq -r .text
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        annotation = client.annotations.get(experiment_id, annotation_id)
    if as_json:
        out.document(annotation)
        return
    out.fields([(column, getattr(annotation, column)) for column in ("id", *_COLUMNS[1:], "client_event_id")])


@annotations_group.command("update")
@click.argument("experiment_id")
@click.argument("annotation_id")
@click.option("--text", help="The new text.")
@metadata_option("The new metadata, replacing the old whole (repeat the option for several).")
@click.option("--clear-metadata", is_flag=True, help="Remove all its metadata.")
@json_option
@click.pass_context
def update(
    ctx: click.Context,
    experiment_id: str,
    annotation_id: str,
    text: str | None,
    metadata: tuple[str, ...],
    clear_metadata: bool,
    as_json: bool,
) -> None:
    """Change an annotation's text or metadata (its step and timestamp stay).

    \b
    Examples:
      tally annotations update exp_... ann_... --text "lr dropped to 1e-4 (cosine)"
      tally annotations update exp_... ann_... --metadata lr=1e-4 --metadata why=plateau
      tally annotations update exp_... ann_... --clear-metadata
    """
    if metadata and clear_metadata:
        raise click.UsageError("give --metadata or --clear-metadata, not both")
    changes: dict[str, Any] = {}
    if text is not None:
        changes["text"] = text
    if metadata or clear_metadata:
        changes["metadata"] = pairs(metadata) or None
    if not changes:
        raise click.UsageError("give --text, --metadata or --clear-metadata")
    with settings(ctx).client() as client:
        annotation = client.annotations.update(experiment_id, annotation_id, **changes)
    if as_json:
        Output(True).document(annotation)
    else:
        click.echo(f"{annotation.id} updated")


@annotations_group.command("delete")
@click.argument("experiment_id")
@click.argument("annotation_id")
@yes_option
@click.pass_context
def delete(ctx: click.Context, experiment_id: str, annotation_id: str, yes: bool) -> None:
    """Delete an annotation; asks first (--yes to skip).

    \b
    Examples:
      tally annotations delete exp_... ann_...
      tally annotations delete exp_... ann_... --yes
    """
    with settings(ctx).client() as client:
        annotation = client.annotations.get(experiment_id, annotation_id)  # a missing one fails before asking
        shown = annotation.text if len(annotation.text) <= 60 else annotation.text[:57] + "..."
        confirm_or_abort(f"Delete annotation {annotation.id} ({shown!r})? This cannot be undone.", yes)
        client.annotations.delete(experiment_id, annotation_id)
    click.echo(f"deleted {annotation_id}")
