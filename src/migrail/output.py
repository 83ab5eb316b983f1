"""The one console: messages go to stderr, data (SQL, JSON) goes to stdout.

Messages are escaped before rich sees them: ``[tool.migrail]`` is text, not markup.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def make_console(file: IO[str] | None = None) -> Console:
    """Build the console that commands write their messages to (stderr unless ``file`` is given)."""
    from rich.console import Console

    return Console(file=file or sys.stderr, highlight=False, soft_wrap=True)


def info(console: Console, message: str) -> None:
    """A line of progress or information."""
    from rich.markup import escape

    console.print(escape(message))


def success(console: Console, message: str) -> None:
    """A finished step, drizzle-kit style: ``[✓] ...``."""
    from rich.markup import escape

    console.print(f"[green]\\[✓][/green] {escape(message)}")


def failure(console: Console, message: str, hint: str | None = None) -> None:
    """An error the user can act on, and what to try."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/bold red] {escape(message)}")
    if hint:
        console.print(f"[yellow]hint:[/yellow] {escape(hint)}")


def write_data(text: str) -> None:
    """Write data meant for a pipe (SQL, JSON) to stdout, unstyled."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
