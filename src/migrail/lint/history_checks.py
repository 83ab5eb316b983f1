"""Checks of the history as a whole, cheap enough for every commit, none with a database.

single-head and immutable read files only; schema-sync imports the models only when their files
changed since the snapshot; lint renders the revisions a commit changes.

Each check is a function of the project's configuration and a ``Tree`` (the disk, or what is
staged) that returns findings; ``migrail check`` and the commit hooks run the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from migrail.core.config import generate_command
from migrail.core.files import unwritable
from migrail.history import branches, graph, sums
from migrail.history.file_names import with_id
from migrail.history.released import judge_sum, released
from migrail.history.revision_files import by_key, revision_key
from migrail.lint.findings import Finding

if TYPE_CHECKING:
    from migrail.core.config import Config
    from migrail.history.tree import Tree

Check = Callable[["Config", "Tree"], list[Finding]]


def single_head(config: Config, tree: Tree) -> list[Finding]:
    """The history has one head, no cycle, no duplicate id and no parent that does not exist.

    Two branches that each add a revision on the same parent leave two heads, and ``upgrade
    head`` then refuses to run; found at commit time, it is a rebase, not an outage.
    """
    headers = _headers(config, tree)
    found = []
    for problem in graph.problems(headers):
        hint = _HINTS.get(problem.kind)
        if problem.kind == "multiple-heads":
            tips = [h for h in headers if h.revision in problem.revisions]
            lines = branches.describe(branches.fork(headers, tips))
            hint = "\n  ".join([f"{hint}", *lines])
        found.append(_finding(config, f"single-head/{problem.kind}", problem.message, hint))
    return found


def immutable(config: Config, tree: Tree) -> list[Finding]:
    """A released revision recorded in ``migrail.sum`` is not edited, removed or added unrecorded.

    Released revisions may have run in production: editing one changes nothing there but makes
    the repository lie about what ran. They are compared with the base branch too, so that a sum
    edited along with them hides nothing. A deliberate change is recorded in the sum with the
    digest the revision was released with (``migrail sum --update --force``), where review sees
    it, and is noted on every check. Revisions only this branch has are drafts: the sum follows
    them, and the check rewrites it and fails once, as a formatter does, so that the commit
    carries it. Released revisions that disagreed with the sum before this branch are a note,
    not a failure.
    """
    sum_path = config.migrations_dir / sums.SUM_FILE
    text = tree.read(sum_path)
    files = _revision_files(config, tree)
    if text is None:
        return [
            _finding(
                config,
                "immutable/no-sum",
                f"{_relative(config, sum_path)} does not exist",
                "record the history as it stands: migrail sum --update",
            )
        ]
    state = released(config, known=files.values())
    judged = judge_sum(text.decode(errors="replace"), files, state)
    found = [
        _finding(config, f"immutable/{problem.kind}", problem.message, _SUM_HINT)
        for problem in judged.failing
    ]
    found += [
        _note(config, f"immutable/{problem.kind}", f"{problem.message} (released)")
        for problem in judged.baseline
    ]
    found += [
        _note(
            config,
            "immutable/changed-released",
            f"{name} differs from the version released on {state.base}: recorded as deliberate "
            f"in {_relative(config, sum_path)} (migrail sum --update --force)",
        )
        for name in judged.deliberate
    ]
    if judged.followed and not any(p.kind == "corrupt" for p in judged.failing):
        try:
            sum_path.write_text(judged.updated)
        except OSError as exc:
            raise unwritable(sum_path, exc) from None
        message = f"{_relative(config, sum_path)} updated for unreleased revision(s): " + ", ".join(
            judged.followed
        )
        hint = f"git add {_relative(config, sum_path)} and commit again"
        found.append(_finding(config, "immutable/sum-updated", message, hint))
    return found


def _revision_files(config: Config, tree: Tree) -> dict[str, bytes]:
    return by_key(tree.revisions(config.versions_dir), config.versions_dir)


def _headers(config: Config, tree: Tree) -> list[graph.Header]:
    """Read once per tree: single-head and schema-sync both ask, of a thousand files."""
    read = _HEADERS.setdefault(tree, {})
    if config.versions_dir not in read:
        files = tree.revisions(config.versions_dir)
        read[config.versions_dir] = [
            graph.read_header(path, content.decode(errors="replace"))
            for path, content in files.items()
        ]
    return read[config.versions_dir]


_HEADERS: WeakKeyDictionary[Tree, dict[Path, list[graph.Header]]] = WeakKeyDictionary()


def _finding(config: Config, rule: str, message: str, hint: str | None) -> Finding:
    return Finding(
        rule=rule, severity="error", message=message, path=config.versions_dir, help=hint
    )


def _note(config: Config, rule: str, message: str) -> Finding:
    """A finding in the baseline (a released revision): shown, never failing."""
    return Finding(rule=rule, severity="warning", message=message, path=config.versions_dir)


def _relative(config: Config, path: Path) -> str:
    return str(path.relative_to(config.root))


_SUM_HINT = (
    "a released revision stays as it is: restore it; if the change is deliberate, "
    "record it: migrail sum --update --force"
)
_HINTS = {
    "multiple-heads": "move this branch's new revisions after the other branch's head: "
    "migrail rebase --onto main",
    "dangling-parent": "fix its down_revision, or restore the revision it names",
    "duplicate-id": "two branches numbered revisions alike? migrail rebase --onto main; "
    "otherwise give one a new id (and rename its file to match)",
    "cycle": "a revision cannot come after itself: fix the down_revision that closes the loop",
    "no-revision-id": 'every revision file declares revision = "<id>"',
    "unreadable-header": "write revision and down_revision as plain literals, as Alembic does",
}


def schema_sync(config: Config, tree: Tree) -> list[Finding]:
    """The models match the schema snapshot at head: a model change comes with its migration.

    No database: the models are rendered as PostgreSQL DDL and compared with the snapshot
    ``generate`` wrote for the newest revision (or the newest one before it that has one, so a
    hand-written data migration that changes no schema passes). When the model files are byte
    for byte those the snapshot was rendered from, they are not even imported.
    """
    import difflib

    from migrail.core.scratch import scratch_directory
    from migrail.engine.models import load_metadata
    from migrail.history.snapshot import (
        model_files,
        models_digest,
        package_paths,
        render_schema,
        split_snapshot,
    )

    if config.metadata is None:
        return []  # no models to keep in sync: migrate-staging reports the check as skipped
    headers = _headers(config, tree)
    tips = graph.heads(headers)
    if len(tips) != 1:
        return []  # single-head reports it
    snapshot = _newest_snapshot(config, tree, headers, tips[0])
    if snapshot is None:
        message = f"no schema snapshot in {_relative(config, config.migrations_dir / 'schema')}"
        hint = "write the one for the current head from the models: migrail snapshot"
        return [_finding(config, "schema-sync/no-snapshot", message, hint)]
    name, text = snapshot
    rendered_from, recorded = split_snapshot(text)
    if rendered_from == models_digest(model_files(config, tree)):
        return []  # the very model files the snapshot was rendered from: no need to import them
    with scratch_directory("staged") as directory:
        source = tree.checkout(package_paths(config), directory, config.root)
        metadata = load_metadata(config, source)
        assert metadata is not None
        current = render_schema(metadata)
    if current == recorded:
        return []
    diff = difflib.unified_diff(
        recorded.splitlines(), current.splitlines(), f"snapshot {name}", "models", lineterm="", n=1
    )
    message = "the models differ from the schema at head:\n" + "\n".join(diff)
    hint = f"write the migration: {generate_command(config.root)}"
    return [_finding(config, "schema-sync/models-changed", message, hint)]


def _newest_snapshot(
    config: Config, tree: Tree, headers: list[graph.Header], tip: graph.Header
) -> tuple[str, str] | None:
    """The snapshot of ``tip``, or of the newest ancestor that has one (by first parents)."""
    from migrail.history.snapshot import snapshot_path

    by_id = {header.revision: header for header in headers}
    current: graph.Header | None = tip
    while current is not None:
        content = tree.read(snapshot_path(config, current.name))
        if content is not None:
            return current.name, content.decode(errors="replace")
        current = by_id.get(current.parents[0]) if current.parents else None
    return None


def lint(config: Config, tree: Tree) -> list[Finding]:
    """``migrail lint`` on the revisions this commit adds or changes (all of them in CI).

    Staged, the migrations folder is copied as it is in the index and linted there, so a
    revision file that is not added, or an unstaged edit, plays no part. Only error-level
    findings fail the check, and only in revisions not released yet: those of released ones
    (the baseline, already run where they ran) are notes. ``migrail lint`` shows the warnings.
    """
    import dataclasses

    from migrail.core.scratch import scratch_directory
    from migrail.engine.executor import Executor
    from migrail.lint.linter import lint_history

    scope = tree.changed(config.versions_dir)
    if scope is not None and not scope:
        return []
    from migrail.history.snapshot import package_paths

    # What env.py and the revisions load besides themselves: the models (an adopted env.py
    # imports them) and the project's Alembic settings (its file_template).
    alembic_ini = [path for path in (config.root / "alembic.ini",) if path.is_file()]
    wanted = [config.migrations_dir, *package_paths(config), *alembic_ini]
    with scratch_directory("staged") as directory:
        root = tree.checkout(wanted, directory, config.root)
        linted = config
        if root is not None and scope is not None:
            moved = root / config.migrations_dir.relative_to(config.root)
            linted = dataclasses.replace(config, root=root, migrations_dir=moved)
            scope = {root / path.relative_to(config.root.resolve()) for path in scope}
        # As ``lint --since``: the revisions older than all the changed ones are read from
        # their headers, not imported (a commit hook must not grow with the history).
        report = lint_history(Executor(linted, needed=scope), scope)
        state = released(config)
        return [
            _note(config, f"lint/{f.rule}", f"{_where(linted, f)}: {f.message} (released)")
            if state.in_baseline(revision_key(f.path, linted.versions_dir), f.path.read_bytes())
            else Finding(
                rule=f"lint/{f.rule}",
                severity="error",
                message=f"{_where(linted, f)}: {f.message}",
                path=config.root / f.path.relative_to(linted.root),
                help=f.help or (f"see {f.url}" if f.url else None),
            )
            for f in report.findings
            if f.failing or f.severity == "baseline"
        ]


def _where(config: Config, finding: Finding) -> str:
    """``migrations/versions/0002_x.py:12``, and the revision's id when the name lacks it."""
    where = _relative(config, finding.path) + (f":{finding.line}" if finding.line else "")
    return with_id(where, finding.revision)


CHECKS: dict[str, Check] = {
    "single-head": single_head,
    "immutable": immutable,
    "schema-sync": schema_sync,
    "lint": lint,
}
