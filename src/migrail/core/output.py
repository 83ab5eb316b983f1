"""The one console: messages go to stderr, data (SQL, JSON) goes to stdout.

Messages are escaped before rich sees them: ``[tool.migrail]`` is text, not markup.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console


def make_console(file: IO[str] | None = None) -> Console:
    """The console commands write their messages to (stderr unless ``file`` is given).

    Built on first use: rich costs a fiftieth of a second to import, and the commit hooks, which
    print a line or two through ``plain``, run on every commit.
    """
    return cast("Console", _LazyConsole(file or sys.stderr))


class _LazyConsole:
    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self._file, highlight=False, soft_wrap=True, width=_width(self._file)
            )
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


# A CI log has no width: cut at rich's default of 80 columns, tables wrap their headers and
# cut revision names. Wide enough for whole names; COLUMNS, when set, still decides.
PIPED_WIDTH = 200


def _width(file: IO[str]) -> int | None:
    """None (rich measures the terminal, or reads COLUMNS) unless ``file`` is a pipe or a file
    and COLUMNS is not set."""
    import os

    if os.environ.get("COLUMNS") or (hasattr(file, "isatty") and file.isatty()):
        return None
    return PIPED_WIDTH


def rich_console(console: Console) -> Console:
    """The real rich console, for rich's own machinery (a live progress display, say)."""
    return console.rich if isinstance(console, _LazyConsole) else console


def plain(message: str, hint: str | None = None, *, ok: bool = False) -> None:
    """A message without rich, for the commit hooks: ``[✓] ...`` or ``error: ...`` and a hint."""
    lines = [f"[✓] {message}" if ok else f"error: {message}"]
    if hint:
        lines.append(f"hint: {hint}")
    sys.stderr.write("".join(f"{line}\n" for line in lines))


def plain_note(message: str) -> None:
    """A finding that does not fail, for the commit hooks: ``note: ...``."""
    sys.stderr.write(f"note: {message}\n")


def info(console: Console, message: str) -> None:
    """A line of progress or information."""
    from rich.markup import escape

    console.print(escape(message))


def items(console: Console, lines: Iterable[str]) -> None:
    """The lines under a message (differences, pending revisions), indented by two spaces."""
    for line in lines:
        info(console, f"  {line}")


def success(console: Console, message: str) -> None:
    """A finished step, drizzle-kit style: ``[✓] ...``."""
    from rich.markup import escape

    console.print(f"[green]\\[✓][/green] {escape(message)}")


def warning(console: Console, message: str) -> None:
    """Something the user should know that does not stop the command."""
    from rich.markup import escape

    console.print(f"[yellow]warning:[/yellow] {escape(message)}")


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
