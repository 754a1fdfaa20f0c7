"""``autojob completion``: the shell completion script of autojob, for bash, zsh or fish."""

from __future__ import annotations

import click

__all__ = ["completion"]

#: the environment variable through which the shell asks autojob for completions
COMPLETE_VAR = "_AUTOJOB_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the script that makes SHELL complete autojob's commands and options.

    Commands, options, paths, and the values of options that take states,
    executors or formats complete with TAB once the script is loaded. Load it in
    the current shell, or for every new shell from its start-up file:

    \b
      bash: eval "$(autojob completion bash)"    (in ~/.bashrc; bash 4.4 or newer)
      zsh:  eval "$(autojob completion zsh)"     (in ~/.zshrc, after compinit)
      fish: autojob completion fish > ~/.config/fish/completions/autojob.fish

    Completing runs autojob, which then imports only the command being completed.

    \b
    Examples:
      autojob completion bash > autojob-completion.bash
      autojob completion zsh
      autojob completion fish
    """
    from click.shell_completion import get_completion_class  # noqa: PLC0415

    from autojob.cli.app import cli  # noqa: PLC0415

    shell_class = get_completion_class(shell)
    if shell_class is None:  # click knows these three; say so if that ever changes
        raise click.UsageError(f"this version of click cannot complete {shell}")
    script = shell_class(cli, {}, "autojob", COMPLETE_VAR).source()
    click.echo(script)
