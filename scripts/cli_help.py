"""Print the help text of every `loraledger` command and group, and every option (hidden ones too).

Run it before and after a change to the command line and diff the two outputs: the public surface (commands,
flags, help) must only change where intended.

    .venv/bin/python scripts/cli_help.py > /tmp/help-before.txt
"""

from __future__ import annotations

import os
import sys

import typer.main
from typer import _click as click

from node.cli import app


def _walk(command: click.Command, path: list[str], parent: click.Context | None) -> None:
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=120, max_content_width=120)
    sys.stdout.write(f"===== {' '.join(path)}\n{command.get_help(ctx)}\n")
    for param in command.params:
        hidden = " (hidden)" if getattr(param, "hidden", False) else ""
        sys.stdout.write(f"  param {param.name}: {'/'.join(param.opts + param.secondary_opts)}{hidden}\n")
    if hasattr(command, "list_commands"):  # a group (typer vendors click; its Group class is not exported)
        for name in command.list_commands(ctx):  # type: ignore[attr-defined]
            sub = command.get_command(ctx, name)  # type: ignore[attr-defined]
            if sub is not None:
                _walk(sub, [*path, name], ctx)


def main() -> None:
    """Walk the command tree from the root and print each command's help."""
    os.environ["COLUMNS"] = "120"
    _walk(typer.main.get_command(app), ["loraledger"], None)


if __name__ == "__main__":
    main()
