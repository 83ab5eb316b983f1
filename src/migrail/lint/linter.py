"""``migrail lint`` as a library: the SQL of each revision, judged by squawk and by migrail's rules.

Findings are data (``Finding``); ``report.py`` renders them. Nothing here prints.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core import proc
from migrail.core.config import LOCK_CLASSES
from migrail.core.errors import FatalError
from migrail.core.scratch import scratch_directory
from migrail.core.urls import mask_text
from migrail.engine.render import render_each
from migrail.history.released import Released, released
from migrail.history.revisions import file_stem, short_name
from migrail.lint import sourcemap
from migrail.lint.findings import Finding, own_finding, sort_key
from migrail.lint.revision_rules import check_revision, file_names_match_revisions
from migrail.lint.squawk import RULES_URL, Violation, run_squawk
from migrail.lint.statement_rules import check_statements
from migrail.lint.suppressions import Suppression, read_suppressions

if TYPE_CHECKING:
    from alembic.script import Script

    from migrail.engine.executor import Executor

VERSION_TABLE = "alembic_version"
OFFLINE = "rendered offline"
CAPTURED = "captured on a throwaway database"
CAPTURED_HEADER = (
    "-- This revision reads from the database, so it cannot be rendered offline: these are the\n"
    "-- statements it ran on a throwaway database, which may differ from run to run.\n\n"
)


@dataclass(frozen=True)
class _Source:
    """A revision file, read and parsed once for every rule that looks at it."""

    text: str
    tree: ast.Module | None

    @classmethod
    def read(cls, revision: Script) -> _Source:
        path = Path(revision.path)
        text = path.read_text(encoding="utf-8", errors="replace")
        return cls(text, sourcemap.parse(text, path))


@dataclass
class LintReport:
    """What was linted (``revisions``, with where each one's SQL came from) and what was found."""

    revisions: list[Script]
    findings: list[Finding] = field(default_factory=list)
    sql: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    rewritten: list[Path] = field(default_factory=list)
    released_without_sql: int = 0  # released revisions with no SQL file, which need none
    sources: dict[str, _Source] = field(default_factory=dict)

    @property
    def failing(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.failing]


def lint_history(
    executor: Executor,
    scope: set[Path] | None = None,
    fix_sql: bool = False,
    all_sql: bool = False,
) -> LintReport:
    """Lint every revision, or those whose files are in ``scope`` (changed against a git base).
    ``fix_sql`` rewrites stale SQL files and writes missing ones, for released revisions too
    only with ``all_sql``."""
    # git, once, while the history loads (its subprocesses wait on another core): the SQL
    # files and the baseline both ask, only about the files in scope (those of them that are
    # revisions are the ones linted; ``released`` leaves the others out).
    state_later = proc.meanwhile(released, executor.config, scope)
    history = executor.revisions()
    # Alembic's paths are resolved already, as ``scope``'s are (strings: compared as such).
    wanted_paths = None if scope is None else {str(path) for path in scope}
    report = LintReport([r for r in history if wanted_paths is None or r.path in wanted_paths])
    report.sources = {revision.revision: _Source.read(revision) for revision in report.revisions}
    wanted = report.sources.keys()
    errors: dict[str, str] = {}
    pieces = render_each(executor, _render_start(history, wanted)) if wanted else []
    for piece in pieces:
        revision_id = piece.revision.revision
        if revision_id in wanted and piece.sql is None:
            errors[revision_id] = piece.error or "it failed"
        elif revision_id in wanted and piece.sql is not None:
            report.sql[revision_id], report.origins[revision_id] = piece.sql, OFFLINE
    _capture_the_rest(executor, report, errors)
    report.findings += _squawk_findings(executor, report)
    pg_version = executor.config.lint.pg_version
    for revision in report.revisions:
        if (tree := report.sources[revision.revision].tree) is not None:
            report.findings += check_revision(revision, tree)
        if (sql := report.sql.get(revision.revision)) is not None:
            report.findings += check_statements(revision, sql, tree, pg_version)
    report.findings += file_names_match_revisions(report.revisions, history, executor.config)
    state = state_later.result()
    report.findings += _sql_files(executor, report, fix_sql, state, history, all_sql)
    report.findings = _baseline(executor, _settle(executor, report), state)
    return report


def _baseline(executor: Executor, findings: list[Finding], state: Released) -> list[Finding]:
    """Errors in released revisions that this branch did not touch are the baseline: an
    adopted history's old findings are listed, and fail neither lint nor a plan."""
    from migrail.history.revision_files import revision_key

    if state.files is None:
        return findings
    versions = executor.config.versions_dir
    return [
        replace(f, severity="baseline")
        if f.failing
        and f.path.is_file()
        and state.in_baseline(revision_key(f.path, versions), f.path.read_bytes())
        else f
        for f in findings
    ]


def _render_start(revisions: list[Script], wanted: Collection[str]) -> tuple[str, ...]:
    """Where rendering may start: the parents of the oldest revision in scope (none: base)."""
    first = next((revision for revision in revisions if revision.revision in wanted), None)
    return tuple(first._versioned_down_revisions) if first is not None else ()


def _capture_the_rest(executor: Executor, report: LintReport, errors: dict[str, str]) -> None:
    """Revisions that failed offline get their SQL from a run on a throwaway database."""
    if not errors:
        return
    from migrail.engine.capture import capture_online

    try:
        captured, failed = capture_online(executor, set(errors))
    except FatalError as exc:
        captured, failed = {}, dict.fromkeys(errors, f"no throwaway database: {exc.message}")
    report.sql.update(captured)
    report.origins.update(dict.fromkeys(captured, CAPTURED))
    by_id = {revision.revision: revision for revision in report.revisions}
    for revision_id, why in failed.items():
        message = f"its SQL cannot be known: offline, {errors[revision_id]}; {why}"
        report.findings.append(own_finding(by_id[revision_id], "cannot-render", message))


def _squawk_findings(executor: Executor, report: LintReport) -> list[Finding]:
    """squawk on one file per revision, each finding mapped back to the revision file.

    A committed ``migrations/sql`` file that says exactly what its revision renders is linted in
    place; the others are written to a temporary directory first.
    """
    by_stem = {
        short_name(revision): revision
        for revision in report.revisions
        if revision.revision in report.sql
    }
    with scratch_directory("lint") as directory:
        files = []
        for stem, revision in by_stem.items():
            sql = report.sql[revision.revision]
            committed = executor.config.sql_dir / f"{stem}.sql"
            if not (committed.is_file() and committed.read_text() == sql):
                committed = directory / f"{stem}.sql"
                committed.write_text(sql)
            files.append(committed)
        violations = run_squawk(files, executor.config.lint, cwd=executor.config.root)
    findings = [
        _from_squawk(violation, by_stem[violation.file.stem], report) for violation in violations
    ]
    # Alembic's own bookkeeping (its version table) is not the revision's doing.
    return [f for f in findings if VERSION_TABLE not in f.context.get("statement", "")]


def _from_squawk(violation: Violation, revision: Script, report: LintReport) -> Finding:
    statement = sourcemap.statement_at(report.sql[revision.revision], violation.line)
    tree = report.sources[revision.revision].tree
    line = sourcemap.locate(statement, sourcemap.op_calls(tree)) if tree is not None else None
    return Finding(
        rule=violation.rule,
        severity="error",
        message=violation.message,
        path=Path(revision.path),
        revision=revision.revision,
        line=line,
        help=violation.help,
        source="squawk",
        url=f"{RULES_URL}{violation.rule}",
        # Masked: a statement may set a password ('CREATE ROLE ... PASSWORD'), and findings
        # go to CI logs and code scanning.
        context={
            "statement": mask_text(statement.strip()),
            "sql line": str(violation.line),
            **({"at": mask_text(violation.at)} if violation.at else {}),
        },
    )


def _sql_files(
    executor: Executor,
    report: LintReport,
    fix: bool,
    state: Released,
    history: list[Script],
    every: bool = False,
) -> list[Finding]:
    """``migrations/sql/<stem>.sql`` must say what its revision runs; ``fix`` rewrites them.

    A revision that cannot render offline gets the statements it ran on a throwaway database,
    under a header saying so; those can differ from run to run, so only the header is checked.
    Files of revisions that no longer exist are reported too (and removed by ``fix``). A
    released revision needs no file: an adopted history ran for years without them, and one
    warning per old revision would bury the new ones.
    """
    from migrail.history.revision_files import revision_key

    findings = []
    for revision in report.revisions:
        sql = report.sql.get(revision.revision)
        if sql is None:
            continue
        captured = report.origins.get(revision.revision) == CAPTURED
        expected = CAPTURED_HEADER + sql if captured else sql
        path = executor.config.sql_dir / f"{short_name(revision)}.sql"
        current = path.read_text() if path.is_file() else None
        if current == expected or (captured and current and current.startswith(CAPTURED_HEADER)):
            continue
        needed = current is not None or not state.known_released(
            revision_key(Path(revision.path), executor.config.versions_dir)
        )
        if fix and (needed or every):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(expected)
            report.rewritten.append(path)
        elif not needed:
            report.released_without_sql += 1  # an adopted history's: asked for with all_sql
        elif current is not None:
            message = (
                f"{_relative(path, executor.config.root)} no longer says what the revision runs"
            )
            findings.append(own_finding(revision, "stale-sql-file", message, help=_FIX_SQL))
        else:
            message = f"{_relative(path, executor.config.root)} does not exist"
            findings.append(
                own_finding(
                    revision, "missing-sql-file", message, help=_FIX_SQL, severity="warning"
                )
            )
    return findings + _orphans(executor, report, fix, history)


def _orphans(
    executor: Executor, report: LintReport, fix: bool, history: list[Script]
) -> list[Finding]:
    """SQL files whose revision was renamed or deleted."""
    known = {short_name(revision) for revision in history}
    findings = []
    folder = executor.config.sql_dir
    for name in _sql_names(folder):
        if file_stem(name) in known:
            continue
        path = folder / name
        if fix:
            path.unlink()
            report.rewritten.append(path)
            continue
        findings.append(
            Finding(
                rule="orphan-sql-file",
                severity="error",
                message=f"{_relative(path, executor.config.root)} belongs to no revision",
                path=path,
                help=_FIX_SQL + " (removes it), or rename it after its revision",
                url="docs/rules.md#orphan-sql-file",
            )
        )
    return findings


def _sql_names(folder: Path) -> list[str]:
    """The names ``sorted(folder.glob("*.sql"))`` finds (hidden ones included, as there),
    without a Path for each of a thousand files: only the orphans, a few at most, need one."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entry.name for entry in entries if entry.name.endswith(".sql"))
    except OSError:  # no folder (nothing written yet), or not one: no files
        return []


_FIX_SQL = "run: migrail lint --fix-sql"


def _settle(executor: Executor, report: LintReport) -> list[Finding]:
    """Apply the revisions' suppressions, then the configured exclusions and warn-only rules
    (to every finding, those about suppressions included)."""
    suppressions = {
        revision.revision: read_suppressions(
            report.sources[revision.revision].text, report.sources[revision.revision].tree
        )
        for revision in report.revisions
    }
    unsuppressed: list[Finding] = []
    for finding in report.findings:
        covering = [
            suppression
            for suppression in suppressions.get(finding.revision or "", [])
            if suppression.applies(finding.rule, finding.line)
        ]
        for suppression in covering:
            suppression.used.add(finding.rule)
        if not covering:
            unsuppressed.append(finding)
    for revision in report.revisions:
        for suppression in suppressions[revision.revision]:
            unsuppressed += _suppression_findings(revision, suppression)
    settings = executor.config.lint
    return sorted(
        (
            replace(finding, severity="warning") if finding.rule in settings.warn else finding
            for finding in unsuppressed
            if finding.rule not in settings.exclude
        ),
        key=sort_key,
    )


def _suppression_findings(revision: Script, suppression: Suppression) -> list[Finding]:
    """A suppression must say why, and must suppress something."""
    findings = []
    rules = ", ".join(suppression.rules)
    if not suppression.reason:
        findings.append(
            own_finding(
                revision,
                "suppression-without-reason",
                f"the suppression of {rules} gives no reason",
                line=suppression.line,
                help="say why after --: # migrail: allow ban-drop-column -- unused since v42",
            )
        )
    # A lock class is judged by staging, which measures it: lint cannot tell it unused.
    unused = [
        rule
        for rule in suppression.rules
        if rule not in suppression.used and rule not in LOCK_CLASSES
    ]
    if unused:
        findings.append(
            own_finding(
                revision,
                "unused-suppression",
                f"the suppression of {', '.join(unused)} suppresses nothing here",
                line=suppression.line,
                help="remove it, or move it next to the statement it is about",
            )
        )
    return findings


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
