"""The project's own code (revisions, ``env.py``, the models module), run so that an exit from it
is a failure, never a success.

A data migration that calls a click command ends with ``SystemExit(0)`` (click's standalone
mode), and a script copied into a revision may call ``sys.exit()``. Left alone, that exception
ends migrail itself with the code the user's code chose, often 0: "done", with nothing applied or
proved. Inside ``user_code()``, it becomes ``UserExit``, an ordinary exception: the revision
that raised it is rolled back and named like any other failure.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


class UserCodeError(Exception):
    """A failure of the project's code whose message is complete as it is (no type prefix)."""


class UserExit(UserCodeError):
    """The project's code tried to end the process: ``sys.exit``, ``SystemExit``, ``os._exit``."""

    def __init__(self, call: str, where: str) -> None:
        self.call = call
        self.where = where
        place = f" {where}" if where else ""
        super().__init__(
            f"{call}{place}: an exit from user code is a failure, not a success "
            "(raise an exception to stop a migration)"
        )


@contextmanager
def user_code(root: Path) -> Iterator[None]:
    """Run the block as the project's code: an exit from it raises ``UserExit``.

    ``root`` is the project folder, to say which of its files exited. ``os._exit`` is caught
    too, in this process only (a child forked by the user's code exits as it asked).
    """
    original = os._exit
    owner = os.getpid()

    def refuse(status: int) -> NoReturn:
        if os.getpid() != owner:
            original(status)
        raise _OsExit(status)

    os._exit = refuse
    try:
        yield
    except _OsExit as exc:
        where = located(traceback.extract_tb(exc.__traceback__), root)
        raise UserExit(f"os._exit({exc.code!r})", where) from None
    except SystemExit as exc:
        where = located(traceback.extract_tb(exc.__traceback__), root)
        raise UserExit(f"SystemExit({exc.code!r})", where) from None
    finally:
        os._exit = original


class _OsExit(SystemExit):
    """``os._exit`` called inside ``user_code``: unwound like ``sys.exit``, then reported."""


def located(frames: Sequence[traceback.FrameSummary], root: Path) -> str:
    """``at path:line`` of the innermost of ``frames`` in the project's files (not in its
    virtual environment), or ``""``: where a failure started, as the user can find it."""
    project = str(root.resolve())
    mine = [
        frame
        for frame in frames
        if frame.filename.startswith(project) and "site-packages" not in frame.filename
    ]
    if not mine:
        return ""
    frame = mine[-1]
    shown = frame.filename.removeprefix(project).lstrip("/") or frame.filename
    return f"at {shown}:{frame.lineno}"
