"""Offline SQL: each revision's upgrade as it will run, for review (``generate``) and for lint.

The whole history renders in one Alembic run; ``on_version_apply`` marks where each revision's
SQL ends, so the output splits into one piece per revision, each with its own transaction
boundaries (an ``autocommit_block`` comes out outside a transaction, as it runs). A revision that
cannot render without a database (it reads through ``op.get_bind()``) is recorded, and rendering
goes on from the next revision.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from migrail.core.errors import FatalError
from migrail.engine.environment import EnvRefused, run_env
from migrail.engine.steps import describe_error
from migrail.engine.usercode import UserExit, user_code
from migrail.history.revisions import display_name

if TYPE_CHECKING:
    from alembic.script import Script

    from migrail.engine.executor import Executor

_COMMIT = "COMMIT;\n\n"
_RUNNING = re.compile(r"-- Running upgrade [^\n]*-> (?P<revision>[^\s,]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Rendered:
    """One revision's upgrade SQL, with the session settings it runs under, or why there is none."""

    revision: Script
    sql: str | None
    error: str | None = None
    exited: UserExit | None = None  # the revision's code tried to end the process

    def require_sql(self, consequence: str = "", hint: str | None = None) -> str:
        """The SQL; without it, an error saying why (``consequence``: what that prevents). An
        exit from the revision's code is its failure, like any exit from user code."""
        if self.sql is not None:
            return self.sql
        name = display_name(self.revision)
        if self.exited is not None:
            raise UserExit(
                f"{name} cannot be rendered as SQL: {self.exited.call}", self.exited.where
            )
        raise FatalError(
            f"{name} cannot be rendered as SQL without a database{consequence}: {self.error}",
            hint=hint,
        )


def render_each(executor: Executor, start: Sequence[str] = ()) -> list[Rendered]:
    """Every revision after ``start`` (the heads already applied; none: base), oldest first.

    Pieces are matched to revisions by the ids Alembic reports, so branches and merges render
    right; a revision that fails is recorded and rendering goes on as if it had been applied.
    """
    pieces: dict[str, Rendered] = {}
    heads = tuple(start)
    while True:
        done, heads_after, failure, text = _render_from(executor, heads)
        for revision_id, sql in done:
            revision = executor.script.get_revision(revision_id)
            pieces[revision_id] = Rendered(revision, executor.session_settings + sql)
        if failure is None:
            break
        failed = _running(text)
        if failed is None or failed in pieces:  # not a revision's doing: env.py, say
            if isinstance(failure, UserExit):
                raise failure
            raise FatalError(
                f"the history cannot be rendered offline: {describe_error(failure)}"
            ) from failure
        revision = executor.script.get_revision(failed)
        exited = failure if isinstance(failure, UserExit) else None
        pieces[failed] = Rendered(revision, None, describe_error(failure), exited)
        below = set(revision._versioned_down_revisions)
        heads = (*[head for head in heads_after if head not in below], failed)
    order = {revision.revision: i for i, revision in enumerate(executor.revisions())}
    return sorted(pieces.values(), key=lambda piece: order[piece.revision.revision])


def _render_from(
    executor: Executor, heads: tuple[str, ...]
) -> tuple[list[tuple[str, str]], tuple[str, ...], Exception | None, str]:
    """One offline run to head from ``heads``: each revision's id and SQL, the heads it reached,
    what stopped it, and the SQL written after the last revision it finished."""
    buffer = io.StringIO()
    marks: list[tuple[str, int]] = []
    reached = [heads]

    def applied(step: Any, heads: set[str], **_: Any) -> None:
        marks.extend((revision_id, buffer.tell()) for revision_id in step.up_revision_ids[:1])
        reached[0] = tuple(heads)

    failure: Exception | None = None
    try:
        _upgrade_offline(executor, list(heads) or None, buffer, applied)
    except EnvRefused:
        raise
    except Exception as exc:
        failure = exc
    text = buffer.getvalue()
    done = _split(text, marks)
    last_end = sum(len(sql) for _, sql in done)
    return done, reached[0], failure, text[last_end:]


def _upgrade_offline(
    executor: Executor, start: list[str] | None, output: TextIO, on_step: Callable[..., None]
) -> None:
    """Render the upgrade from the heads ``start`` (``None``: base) to head into ``output``.

    What ``command.upgrade(sql=True)`` does, on the history already loaded rather than on a
    second copy of it (loading 200 revision files costs as much as rendering them).
    """
    script = executor.script
    cfg = executor.alembic_config(on_version_apply=[on_step])
    cfg.output_buffer = output

    def upgrade(revision: Any, context: Any) -> Any:
        return script._upgrade_revs("heads", revision)

    with user_code(executor.config.root):
        run_env(
            cfg,
            executor.config,
            script,
            None,
            fn=upgrade,
            as_sql=True,
            starting_rev=start,
            destination_rev="heads",
        )


def render_downgrade(executor: Executor, start: str, target: str | None) -> list[Rendered]:
    """The SQL that undoes each revision from ``start`` down to ``target`` (which stays; ``None``:
    base), newest first, as a release plan records it. Alembic renders a downgrade offline only
    from a stated start (``start:target``); a revision that cannot render is an error here, as
    an unrenderable downgrade cannot be approved."""
    buffer = io.StringIO()
    marks: list[tuple[str, int]] = []

    def applied(step: Any, **_: Any) -> None:
        marks.extend((revision_id, buffer.tell()) for revision_id in step.up_revision_ids[:1])

    script = executor.script
    cfg = executor.alembic_config(on_version_apply=[applied])
    cfg.output_buffer = buffer
    destination = target or "base"

    def downgrade(revision: Any, context: Any) -> Any:
        return script._downgrade_revs(destination, revision)

    try:
        # Through run_env, as the upgrade: an adopted env.py gets migrail's callbacks (the
        # marks), and runs in the project's app context, its logging setup kept out.
        with user_code(executor.config.root):
            run_env(
                cfg,
                executor.config,
                script,
                None,
                fn=downgrade,
                as_sql=True,
                starting_rev=start,
                destination_rev=destination,
            )
    except Exception as exc:
        raise FatalError(
            f"the downgrade cannot be rendered offline: {describe_error(exc)}",
            hint="a downgrade that reads from the database cannot be planned for approval",
        ) from exc
    return [
        Rendered(script.get_revision(revision_id), executor.session_settings + sql)
        for revision_id, sql in _split(buffer.getvalue(), marks)
    ]


def _running(text: str) -> str | None:
    """The revision a stopped offline run was in: Alembic writes ``-- Running upgrade a -> b``."""
    match = _RUNNING.search(text)
    return match["revision"] if match else None


def render_one(executor: Executor, previous: str | None) -> str:
    """The SQL of the revision after ``previous`` (the newest one), as ``generate`` writes it."""
    [piece] = render_each(executor, (previous,) if previous else ())[:1]
    return piece.require_sql()


def render_range(executor: Executor, start: str | None, only: Collection[str] | None = None) -> str:
    """The SQL an upgrade from ``start`` to head runs, as one script; a FatalError if it cannot.
    ``only``: the ids of the revisions to keep (an upgrade that stops below head)."""
    pieces = [
        piece
        for piece in render_each(executor, (start,) if start else ())
        if only is None or piece.revision.revision in only
    ]
    hint = "a data migration that reads from the database: apply it with migrate"
    return executor.session_settings + "".join(
        piece.require_sql(hint=hint).removeprefix(executor.session_settings) for piece in pieces
    )


def _split(text: str, marks: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """Cut the output after each revision's COMMIT (Alembic marks the end just before it)."""
    pieces, begin = [], 0
    for revision_id, end in marks:
        if text.startswith(_COMMIT, end):
            end += len(_COMMIT)
        pieces.append((revision_id, text[begin:end]))
        begin = end
    return pieces
