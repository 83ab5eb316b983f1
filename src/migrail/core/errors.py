"""The exceptions migrail turns into exit codes, in exactly one place (``main.error_handler``)."""

from __future__ import annotations


class FatalError(RuntimeError):
    """A problem the user can fix: bad configuration, an unreachable database, a broken file.

    The message is shown as is, without a traceback, and the command exits with code 2.
    ``hint`` is one line saying what to try.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM so that ``finally`` blocks (cleanup) still run.

    A ``KeyboardInterrupt``, so that no ``except Exception`` swallows it, and so that SIGTERM
    is undone as Ctrl-C is: psycopg, interrupted while it waits for the server, cancels the
    running statement (and only for ``KeyboardInterrupt``), which would otherwise run on,
    holding its locks, after migrail has gone.
    """


class NamedInterrupt(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, also a ``Terminated``) that stopped work migrail can name: the
    revision running, say. Still an interrupt, so that the run stops and its cleanup runs; the
    error handler tells ``told()`` instead of a bare "interrupted"."""

    def told(self) -> list[str]:
        """The error's line, then the lines under it."""
        raise NotImplementedError
