"""Loading the revision files with Alembic, all of them at once, so that a broken one is
reported before anything runs, in words that name the file to fix."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.core.files import read_bytes, sized_content
from migrail.engine.lazy_revisions import (
    Header,
    header_of,
    read_lazily,
    realise_after,
    realise_from,
)
from migrail.engine.models import importable
from migrail.engine.usercode import UserExit, user_code
from migrail.history.revision_files import revision_paths
from migrail.history.revisions import check_versions_folder

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from alembic.script import ScriptDirectory

    from migrail.core.config import Config
    from migrail.engine.executor import Executor


MAX_REVISION_BYTES = 10_000_000


def load_script(executor: Executor) -> ScriptDirectory:
    """The revision files, all loaded, with one head; any other history is a FatalError.
    With ``executor.needed``, those older than all the needed ones are read from their
    headers and imported only when used (``lazy_revisions``)."""
    from alembic.script import ScriptDirectory

    config = executor.config
    env_py = config.migrations_dir / "env.py"
    if not env_py.is_file():
        raise FatalError(
            f"{config.migrations_dir} has no env.py: it is not an Alembic environment",
            hint="check [tool.migrail] migrations in pyproject.toml",
        )
    read_bytes(env_py)  # run later, for each revision: one it cannot read is not theirs
    check_versions_folder(config)
    # Read lazily, the headers are parsed as the files are checked: once, not twice.
    headers: dict[str, Header | None] | None = None if executor.needed is None else {}
    sources = executor.sources = _check_revision_files(config, headers)
    importable(config.root)
    script = ScriptDirectory.from_config(executor.alembic_config())
    if headers is not None:
        read_lazily(script, sources, headers, config.root)
    with _reported(config):
        heads = script.get_heads()
        if executor.needed:  # none needed now: each file is imported when used
            realise_from(executor.ordered(script), executor.needed)
    if len(heads) > 1:
        raise _several_heads(script, heads)
    return script


def import_after(executor: Executor, held: Collection[str]) -> None:
    """Import the files of the revisions not in ``held`` (ids) that were left for later,
    failing as loading them all would have: before any of them runs."""
    with _reported(executor.config):
        realise_after(executor.revisions(), held)


@contextmanager
def _reported(config: Config) -> Iterator[None]:
    """Alembic's and Python's failures to load the revision files, as FatalErrors that name
    the file to fix."""
    from alembic.script.revision import CycleDetected
    from alembic.util import CommandError

    try:
        with warnings.catch_warnings(), user_code(config.root):
            # Alembic only warns about a down_revision that names no revision, and about
            # two files declaring the same revision.
            warnings.simplefilter("error", UserWarning)
            yield
    except UserExit as exc:
        raise UserExit(f"loading the revision files: {exc.call}", exc.where) from None
    except UserWarning as exc:
        hint: str | None = "fix the down_revision of the revision that names a missing parent"
        if "more than once" in str(exc):
            hint = "two revision files declare that id: give one a new id (and its child)"
        raise FatalError(f"the migration history is broken: {exc}", hint=hint) from None
    except SyntaxError as exc:
        hint = "save the file as UTF-8" if "codec can't decode" in str(exc.msg) else None
        where = f"{exc.filename}:{exc.lineno}: " if exc.filename else ""
        raise FatalError(f"{where}syntax error in a revision file: {exc.msg}", hint=hint) from None
    except CycleDetected as exc:
        raise FatalError(
            f"the migration history has a cycle: {', '.join(exc.revisions)} "
            "descend from each other",
            hint="fix their down_revision (or depends_on): each names what it comes after",
        ) from None
    except CommandError as exc:
        raise _history_error(exc, config.versions_dir) from None
    except Exception as exc:
        raise FatalError(
            f"{_culprit(config, exc)}a revision file failed to load: {type(exc).__name__}: {exc}"
        ) from None


def _several_heads(script: ScriptDirectory, heads: Sequence[str]) -> FatalError:
    """The heads by name, and where their branches part: what to merge or rebase."""
    from migrail.history import branches
    from migrail.history.graph import Header
    from migrail.history.revisions import parents

    headers = [
        Header(Path(revision.path), revision.revision, parents(revision))
        for revision in script.walk_revisions("base", "heads")
    ]
    tips = sorted((h for h in headers if h.revision in heads), key=lambda h: h.path.name)
    lines = branches.describe(branches.fork(headers, tips))
    return FatalError(
        f"the migration history has {len(tips)} heads: " + ", ".join(tip.display for tip in tips),
        hint="\n  ".join(
            ["merge them: alembic merge, or rebase one branch's revision onto the other", *lines]
        ),
    )


def _check_revision_files(
    config: Config, headers: dict[str, Header | None] | None = None
) -> dict[str, bytes]:
    """What Alembic would fail on without naming the file: NUL bytes (a binary file, or
    UTF-16) and a header value of the wrong type (``revision = 6``). And a revision file of
    many megabytes is data, not a migration: loading it would take long and much memory,
    on every command (the hooks too). The files' contents, by path, as read; with
    ``headers``, their headers too (``header_of``), by path."""
    sources = {}
    for path in revision_paths(config.versions_dir):  # in subfolders too, as Alembic loads them
        try:
            size, content = sized_content(path, MAX_REVISION_BYTES)
        except OSError:
            continue  # a dangling link, say: Alembic says what it makes of it
        if size > MAX_REVISION_BYTES:
            raise FatalError(
                f"{path}: a revision file of {size / 1_000_000:.1f} MB "
                f"(the limit is {MAX_REVISION_BYTES // 1_000_000} MB)",
                hint="load bulk data from a file or a script run by the revision, "
                "not from the revision's own source",
            )
        header = None
        if headers is not None:
            header = headers[str(path)] = header_of(content)
        _check_revision_source(path, content, header)
        sources[str(path)] = content
    return sources


def _check_revision_source(path: Path, content: bytes, header: Header | None) -> None:
    """``header``: the file's, if it reads as literals; each value of the right type means
    ``misdeclared`` has nothing to say (it judges those very values), and is not asked."""
    from migrail.history.graph import misdeclared, wrong_type

    if b"\0" in content:
        line = content.count(b"\n", 0, content.index(b"\0")) + 1
        raise FatalError(
            f"{path}:{line}: a NUL byte in a revision file: it is not Python source",
            hint="restore it (git checkout it); an editor that saves UTF-16 writes NUL bytes "
            "too: save it as UTF-8",
        )
    if header is not None and not any(wrong_type(*item) for item in header.items()):
        return
    wrong = misdeclared(content.decode("utf-8", errors="replace"))
    if wrong is not None:
        raise FatalError(
            f"{path}:{wrong[0]}: {wrong[1]}",
            hint="write revision ids in quotes, e.g. revision = '0002', down_revision = '0001'",
        )


def _culprit(config: Config, exc: BaseException) -> str:
    """``path:line: `` of the revision file an exception was raised in, if it was."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    versions = str(config.versions_dir.resolve())
    inside = [frame for frame in frames if frame.filename.startswith(versions)]
    return f"{inside[-1].filename}:{inside[-1].lineno}: " if inside else ""


def _history_error(exc: Exception, versions: Path) -> FatalError:
    """Alembic's CommandError about the history, in words that say which file to fix."""
    import re

    found = re.search(r"Could not determine revision id from filename (.+?\.py)", str(exc))
    if found:
        # Alembic names the file alone; it may be in a subfolder.
        named = [path for path in revision_paths(versions) if path.name == found.group(1)]
        return FatalError(
            f"{named[0] if len(named) == 1 else versions / found.group(1)} declares no revision id "
            "(an empty or unfinished revision file)",
            hint="give it revision = '<id>' and down_revision, or delete it",
        )
    return FatalError(f"the migration history is broken: {exc}")
