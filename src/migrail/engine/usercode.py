"""The project's own code (revisions, ``env.py``, the models module), run so that an exit from it
is a failure, never a success.

A data migration that calls a click command ends with ``SystemExit(0)`` (click's standalone
mode), and a script copied into a revision may call ``sys.exit()``. Left alone, that exception
ends migrail itself with the code the user's code chose, often 0: "done", with nothing applied or
proved. Inside ``user_code()``, it becomes ``UserExit``, an ordinary exception: the revision
that raised it is rolled back and named like any other failure.

A new database connection opened inside ``user_code()`` is refused the same way, at the line that
opens it: its work would be committed on its own whatever becomes of the revision, on whatever
database it names (a real one hard-coded in a revision), and it may wait for a lock the
revision holds while the revision waits for it. The code runs on the connection migrail gives it.

Ctrl-C and SIGTERM stay migrail's while the code runs (``core.signals.handlers_kept``): a
revision, or a library it imports, that ignores them or installs a handler of its own would
otherwise leave the run deaf to them, the revision running on to commit.
"""

from __future__ import annotations

import os
import posix
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from migrail.core.errors import Terminated
from migrail.core.signals import handlers_kept
from migrail.engine.drivers import watch_connects

STOPPED = "stopped there and rolled back, none of it applied"


class UserCodeError(Exception):
    """A failure of the project's code whose message is complete as it is (no type prefix)."""


class SecondConnection(UserCodeError):
    """The project's code opened a database connection of its own while it ran."""

    def __init__(self, call: str, where: str) -> None:
        place = f" {where}" if where else ""
        super().__init__(
            f"it opens a second connection{place} ({call}), whose work would not be part of "
            f"its transaction: {STOPPED}. Use op.get_bind(), the revision's own"
        )


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


# The ways out of the process that skip Python's unwinding, by module: each is replaced while
# the project's code runs.
_EXITS = (
    (os, "_exit"),
    (posix, "_exit"),
    (os, "execv"),
    (os, "execve"),
    (posix, "execv"),
    (posix, "execve"),
)


_HERE = threading.local()  # ``depth``: how deep this thread is in ``user_code`` blocks


def running_here() -> bool:
    """Whether the calling thread runs the project's code now: inside ``user_code``, or a
    thread of the project's own (a worker its revision started, or its models module as it was
    imported, in an earlier block) while that code runs. What it
    reads of the environment is what the project's answer depends on, unlike what migrail and
    its libraries read meanwhile: their threads were there before the project's code began (a
    display refreshing, asking the terminal's width), or are migrail's by name."""
    if getattr(_HERE, "depth", 0) > 0:
        return True
    if _Running.depth == 0:
        return False
    thread = threading.current_thread()
    if getattr(thread, _PROJECTS, False):  # started by the project's code, in any block
        return True
    return thread.ident not in _Running.threads_before and not thread.name.startswith("migrail-")


# Set on a thread the project's code starts: a worker pool its models module started as it was
# imported is still the project's in the revisions' block, though alive before that began.
_PROJECTS = "_migrail_project_code"


def _marking(start: Any) -> Any:
    """``threading.Thread.start``, marking a thread the project's code starts as running it."""

    def start_marked(thread: threading.Thread) -> None:
        if running_here():
            setattr(thread, _PROJECTS, True)
        start(thread)

    return start_marked


class _Running:
    """Which process runs the project's code, how deep (user_code may nest), the sockets of the
    connections it runs on, whether each block may connect, and the connections refused."""

    owner: int | None = None
    depth = 0
    originals: dict[tuple[object, str], Any] = {}  # noqa: RUF012  (one table, for the process)
    sockets: set[int] = set()  # noqa: RUF012
    fork_hook = False
    blocks: list[tuple[Path, bool]] = []  # noqa: RUF012  (root, may connect), innermost last
    threads_before: set[int | None] = set()  # noqa: RUF012  (those alive as the code began)
    refused: list[UserCodeError] = []  # noqa: RUF012  (not yet reported)
    signals = ExitStack()  # Ctrl-C's and SIGTERM's handlers, kept while the outermost block runs


def _close_inherited_sockets() -> None:
    """In a child forked by the project's code: its copies of migrail's connections are
    closed, so that whatever the child does (unwinding through a transaction's rollback, say)
    cannot reach the parent's session."""
    for socket in _Running.sockets:
        try:
            os.close(socket)
        except OSError:
            continue


@contextmanager
def user_code(
    root: Path, sockets: Sequence[int] = (), *, may_connect: bool = False
) -> Iterator[None]:
    """Run the block as the project's code: an exit from it raises ``UserExit``, a new database
    connection ``SecondConnection``, any other ``BaseException`` but Ctrl-C and SIGTERM a
    ``UserCodeError``. Ctrl-C and SIGTERM keep migrail's handlers meanwhile.

    The innermost block decides whether the code may connect: the application's own code (its
    models module, its Flask app factory) may, as it does when the application runs; revisions
    and env.py, which run on the connection migrail gives them, may not.

    ``root`` is the project folder, to say which of its files exited. ``os._exit``,
    ``posix._exit`` and the ``exec`` functions (a process replaced ends the run as surely)
    are refused too. A child the project's code forks ends where the block ends, however it
    got there: it must not go on running migrail beside its parent, and the ``sockets`` of the
    connections the code runs on are closed in it at once.
    """
    if not _Running.fork_hook:
        os.register_at_fork(after_in_child=_close_inherited_sockets)
        watch_connects(_refuse_connection)
        _Running.fork_hook = True
    added = set(sockets) - _Running.sockets
    _Running.sockets |= added
    if _Running.depth == 0:
        _Running.owner = os.getpid()
        _Running.threads_before = {thread.ident for thread in threading.enumerate()}
        for module, name in _EXITS:
            _Running.originals[(module, name)] = getattr(module, name)
            setattr(module, name, _refused(name))
        _Running.originals[(threading.Thread, "start")] = threading.Thread.start
        threading.Thread.start = _marking(threading.Thread.start)  # type: ignore[method-assign]
        _Running.signals.enter_context(handlers_kept())
    _Running.depth += 1
    _HERE.depth = getattr(_HERE, "depth", 0) + 1
    _Running.blocks.append((root, may_connect))
    refused_before = len(_Running.refused)
    status = 1
    try:
        yield
        if len(_Running.refused) > refused_before:  # caught by the code, which went on
            late = _Running.refused[refused_before]
            del _Running.refused[refused_before:]
            raise late
        status = 0
    except _ConnectionRefused as exc:
        del _Running.refused[refused_before:]
        raise SecondConnection(exc.call, exc.where) from None
    except _Refused as exc:
        status = exc.status
        where = located(traceback.extract_tb(exc.__traceback__), root)
        raise UserExit(exc.call, where) from None
    except (KeyboardInterrupt, Terminated):
        raise
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
        where = located(traceback.extract_tb(exc.__traceback__), root)
        raise UserExit(f"SystemExit({exc.code!r})", where) from None
    except Exception:
        raise
    except BaseException as exc:  # GeneratorExit, BaseException itself: not an exit, a failure
        where = located(traceback.extract_tb(exc.__traceback__), root)
        place = f" {where}" if where else ""
        raise UserCodeError(f"{type(exc).__name__}: {exc}{place}") from None
    finally:
        if os.getpid() != _Running.owner:  # a forked child, at the end of what it was to run
            _Running.originals[(os, "_exit")](status)
        _Running.depth -= 1
        _HERE.depth -= 1
        _Running.blocks.pop()
        _Running.sockets -= added
        if _Running.depth == 0:
            for module, name in _EXITS:
                setattr(module, name, _Running.originals[(module, name)])
            start = _Running.originals[(threading.Thread, "start")]
            threading.Thread.start = start  # type: ignore[method-assign]
            _Running.signals.close()


def _refuse_connection(call: str) -> None:
    """Before a driver connects: refused inside a block that may not connect (in a child the
    code forked as well), where the code called it."""
    if not _Running.blocks or _Running.blocks[-1][1]:
        return
    where = located(traceback.extract_stack(), _Running.blocks[-1][0])
    _Running.refused.append(SecondConnection(call, where))
    raise _ConnectionRefused(call, where)


class ThreadExit(UserCodeError):
    """The project's code asked to end the process from a thread of its own: refused there, it
    would only have ended that thread, and the revision would have gone on to commit."""

    def __init__(self, call: str, where: str) -> None:
        place = f" {where}" if where else ""
        super().__init__(f"{call} in a thread of the project's code{place}: the run stops here")


def take_refusal() -> UserCodeError | None:
    """The first connection, or exit from a thread, refused and not yet reported (one the code
    caught, or that ended only a thread, and it went on): the revision that ran fails with it,
    however it carried on."""
    refused = _Running.refused[:1]
    _Running.refused.clear()
    return refused[0] if refused else None


class _ConnectionRefused(BaseException):
    """A connection refused, raised where the code connects: not an ``Exception``, so that an
    ``except Exception`` around it does not carry on as if the work were done. ``where`` is
    taken when refused, as drivers re-raise their errors without a traceback."""

    def __init__(self, call: str, where: str) -> None:
        super().__init__(f"{call} {where}")
        self.call = call
        self.where = where


def _refused(name: str) -> Callable[..., None]:
    """What ``os.<name>`` is while the project's code runs: in this process, the exit is
    unwound as an exception and reported; in a forked child, or after the block (an ``atexit``
    handler the code registered), it does what it was asked, or nothing that could turn a
    failed run into a success."""

    def refused(*args: Any) -> None:
        original = _Running.originals[(posix, name)]
        if os.getpid() != _Running.owner:
            original(*args)
            return
        if _Running.depth == 0:  # after the block: an atexit handler; the run's code stands
            return
        call = f"os._exit({args[0]!r})" if name == "_exit" else f"os.{name}({args[0]!r}, ...)"
        if threading.current_thread() is not threading.main_thread():
            root = _Running.blocks[-1][0] if _Running.blocks else Path.cwd()
            _Running.refused.append(ThreadExit(call, located(traceback.extract_stack(), root)))
        raise _Refused(call, int(args[0]) if name == "_exit" else 1)

    return refused


class _Refused(SystemExit):
    """An exit inside ``user_code`` that would skip unwinding, unwound instead."""

    def __init__(self, call: str, status: int) -> None:
        super().__init__(status)
        self.call = call
        self.status = status


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
