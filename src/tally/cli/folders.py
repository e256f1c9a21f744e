"""`tally folders`: the folder tree; create, rename, move, archive, unarchive and delete folders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tally._pagination import MAX_PAGE_SIZE
from tally.cli._app import settings
from tally.cli._output import Output, json_option

if TYPE_CHECKING:
    from tally import Tally

__all__ = ["folders"]


@click.group()
def folders() -> None:
    """Folders organise experiments in a tree."""


def _subtree(client: Tally, parent_id: str | None, with_experiments: bool) -> list[dict[str, Any]]:
    """Every folder under `parent_id`, each with its `children` (and `experiments` when asked), by walking
    the `list(parent_id=...)` endpoint level by level."""
    nodes = []
    for folder in client.folders.list(parent_id=parent_id, page_size=MAX_PAGE_SIZE):
        node: dict[str, Any] = {"id": folder.id, "name": folder.name, "parent_id": folder.parent_id}
        if with_experiments:
            node["experiments"] = [
                {"id": e.id, "name": e.name, "status": e.status}
                for e in client.experiments.list(folder_id=folder.id, page_size=MAX_PAGE_SIZE)
            ]
        node["children"] = _subtree(client, folder.id, with_experiments)
        nodes.append(node)
    return nodes


@folders.command("tree")
@click.option("--root", "root_id", metavar="FOLDER_ID", help="Show only the tree under this folder.")
@click.option("--experiments", "with_experiments", is_flag=True, help="List each folder's experiments too.")
@json_option
@click.pass_context
def tree(ctx: click.Context, root_id: str | None, with_experiments: bool, as_json: bool) -> None:
    """The folder tree (from the top, or under --root).

    \b
    Examples:
      tally folders tree
      tally folders tree --experiments
      tally folders tree --json | jq '.[].name'
    """
    out = Output(as_json)
    with settings(ctx).client() as client:
        if root_id is not None:
            client.folders.get(root_id)  # a wrong id is "not found", not an empty tree
        nodes = _subtree(client, root_id, with_experiments)
    if as_json:
        out.document(nodes)
        return
    if not nodes:
        out.note("no folders" + (" under this one" if root_id else " yet: tally folders create NAME"))
        return
    if out.for_people:
        from rich.tree import Tree

        top = Tree(root_id or "[bold]folders[/]")
        _grow(top, nodes)
        out.console.print(top)
        return
    for line in _plain(nodes, 0):
        click.echo(line)


def _grow(branch: Any, nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        child = branch.add(f"[bold]{node['name']}[/]  [dim]{node['id']}[/]")
        for experiment in node.get("experiments", []):
            child.add(f"{experiment['name']}  [dim]{experiment['id']} {experiment['status']}[/]")
        _grow(child, node["children"])


def _plain(nodes: list[dict[str, Any]], depth: int) -> list[str]:
    lines = []
    for node in nodes:
        lines.append(f"{'  ' * depth}{node['name']}/\t{node['id']}")
        for experiment in node.get("experiments", []):
            lines.append(
                f"{'  ' * (depth + 1)}{experiment['name']}\t{experiment['id']}\t{experiment['status']}"
            )
        lines.extend(_plain(node["children"], depth + 1))
    return lines


@folders.command("create")
@click.argument("name")
@click.option("--parent", "parent_id", metavar="FOLDER_ID", help="Create it inside this folder.")
@click.option("--description", help="A description.")
@json_option
@click.pass_context
def create(
    ctx: click.Context, name: str, parent_id: str | None, description: str | None, as_json: bool
) -> None:
    """Create a folder (names are unique within a parent).

    \b
    Examples:
      tally folders create vision
      tally folders create resnet --parent fld_...
    """
    with settings(ctx).client() as client:
        folder = client.folders.create(name, parent_id=parent_id, description=description)
    if as_json:
        Output(True).document(folder)
    else:
        click.echo(folder.id)


@folders.command("delete")
@click.argument("folder_id")
@click.pass_context
def delete(ctx: click.Context, folder_id: str) -> None:
    """Delete an empty folder (no experiments or folders in it, archived ones included). One that is not empty
    is refused (exit 1) with what it holds; nothing in it is ever deleted, so this does not ask first.

    \b
    Examples:
      tally folders delete fld_...
    """
    with settings(ctx).client() as client:
        client.folders.delete(folder_id)
    click.echo(f"deleted {folder_id}")


@folders.command("rename")
@click.argument("folder_id")
@click.argument("name")
@json_option
@click.pass_context
def rename(ctx: click.Context, folder_id: str, name: str, as_json: bool) -> None:
    """Rename a folder (names are unique within a parent).

    \b
    Examples:
      tally folders rename fld_... vision-2027
    """
    with settings(ctx).client() as client:
        folder = client.folders.rename(folder_id, name)
    if as_json:
        Output(True).document(folder)
    else:
        click.echo(f"{folder.id} renamed to {folder.name}")


@folders.command("move")
@click.argument("folder_id")
@click.option("--parent", "parent_id", metavar="FOLDER_ID", help="The folder to move it into.")
@click.option("--root", "to_root", is_flag=True, help="Move it to the top level.")
@json_option
@click.pass_context
def move(ctx: click.Context, folder_id: str, parent_id: str | None, to_root: bool, as_json: bool) -> None:
    """Move a folder, with everything in it, under another folder (--parent) or to the top level (--root).

    \b
    Examples:
      tally folders move fld_... --parent fld_...
      tally folders move fld_... --root
    """
    if (parent_id is None) == (not to_root):
        raise click.UsageError("give exactly one of --parent FOLDER_ID or --root")
    with settings(ctx).client() as client:
        folder = client.folders.move(folder_id, None if to_root else parent_id)
    if as_json:
        Output(True).document(folder)
    else:
        click.echo(f"{folder.id} -> {folder.parent_id or '(top level)'}")


@folders.command("archive")
@click.argument("folder_id")
@json_option
@click.pass_context
def archive(ctx: click.Context, folder_id: str, as_json: bool) -> None:
    """Archive a folder: lists leave it out; what it holds keeps its own state.

    \b
    Examples:
      tally folders archive fld_...
    """
    with settings(ctx).client() as client:
        folder = client.folders.archive(folder_id)
    if as_json:
        Output(True).document(folder)
    else:
        click.echo(f"{folder.id} archived")


@folders.command("unarchive")
@click.argument("folder_id")
@json_option
@click.pass_context
def unarchive(ctx: click.Context, folder_id: str, as_json: bool) -> None:
    """Unarchive a folder: listed again.

    \b
    Examples:
      tally folders unarchive fld_...
    """
    with settings(ctx).client() as client:
        folder = client.folders.unarchive(folder_id)
    if as_json:
        Output(True).document(folder)
    else:
        click.echo(f"{folder.id} unarchived")
