"""`tally completion SHELL`: the shell-completion script, from click's own completion support."""

from __future__ import annotations

import click

__all__ = ["completion"]


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL; source it from your shell's start-up file.

    \b
    Examples:
      eval "$(tally completion bash)"                      # in ~/.bashrc
      tally completion fish > ~/.config/fish/completions/tally.fish
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root().command
    completer = get_completion_class(shell)
    assert completer is not None  # click knows every choice above
    click.echo(completer(root, {}, "tally", "_TALLY_COMPLETE").source())
