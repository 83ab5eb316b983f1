"""``migrate-staging --report``: the staging proof as one Markdown page, fit for a PR comment.

Per revision: its timings, the locks and rewrites measured in staging (with their class), and
its lint findings; then the lock policy's verdicts, the round trip's result and, when the models
and the schema disagree, the difference as operations and as the SQL that would close it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.engine.diffs import describe_all
from migrail.history.revisions import display_name
from migrail.staging.lock_policy import notes
from migrail.staging.proof import PHASES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from migrail.lint.findings import Finding
    from migrail.staging.proof import StagingReport
    from migrail.staging.run import Version


def render(
    report: StagingReport,
    label: Callable[[Sequence[str]], str],
    findings: list[Finding] | None,
    lint_error: str | None = None,
    version: Version | None = None,
) -> str:
    """The whole page; ``findings`` is ``None`` when lint did not run (``lint_error`` says why);
    ``version``: how staging's PostgreSQL differs from production's, and whether that failed."""
    verdict = "passed" if report.ok and not (version and version.fails) else "failed"
    failing = sum(1 for finding in findings or [] if finding.failing)
    if failing:
        verdict += f", with {failing} failing lint finding(s)"
    lines = [f"## migrate-staging: {verdict}", ""]
    if version is not None:
        lines += [f"**PostgreSQL version:** {version.difference}.", ""]
    if report.cloned:
        lines += [
            f"Started from the template cache's copy of the database at "
            f"`{label((report.start,))}` (proven by an earlier run, unchanged since); newer "
            "revisions proven.",
            "",
        ]
    elif report.start != "base":
        lines += [f"Built at `{label((report.start,))}` (as deployed); newer revisions proven.", ""]
    lines += [
        "| revision | " + " | ".join(PHASES) + " | locks and rewrites (measured) | lint |",
        "|---|" + "---:|" * len(PHASES) + "---|---|",
    ]
    by_revision: dict[str | None, list[Finding]] = {}
    for finding in findings or []:
        by_revision.setdefault(finding.revision, []).append(finding)
    lock_failing = {finding.revision.revision for finding in report.lock_errors}
    for revision in report.revisions:
        rev = revision.revision
        times = report.times(rev)
        effects = report.effects.get(rev)
        measured = effects.summary() if effects else ""
        if rev in lock_failing:
            measured = f"⚠️ {measured}"
        lint = "not run" if findings is None else _lint_cell(by_revision.get(rev, []))
        cells = [f"`{display_name(revision)}`", *times, _cell(measured), lint]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        *_data(report),
        *_locks(report),
        *_round_trip(report, label),
        *_step_round_trip(report),
        *_models(report),
    ]
    if lint_error is not None:
        lines += [f"Lint did not run: {_cell(lint_error)}", ""]
    for revision in report.revisions:
        for finding in by_revision.get(revision.revision, []):
            where = f"line {finding.line}" if finding.line else "revision"
            lines.append(
                f"- `{display_name(revision)}` {where}: **{finding.rule}** "
                f"({finding.severity}) {_cell(finding.message)}"
            )
    return "\n".join(lines).rstrip() + "\n"


def render_error(message: str, hint: str | None) -> str:
    """The page of a run that stopped on an error before it could prove anything."""
    lines = ["## migrate-staging: error", "", f"The run stopped: {_cell(message)}"]
    if hint:
        lines += ["", f"Hint: {_cell(hint)}"]
    return "\n".join(lines) + "\n"


def _data(report: StagingReport) -> list[str]:
    if report.data is None:
        return ["**Data:** none (`--no-data`): the revisions ran on empty tables.", ""]
    lines = [f"**Data:** {_cell(report.data.summary())}."]
    lines += [f"- {_cell(problem)}" for problem in report.data.problems()]
    return [*lines, ""]


def _locks(report: StagingReport) -> list[str]:
    """The lock policy's verdicts: errors with what to do instead, warnings, allowed ones, and
    the notes counted."""
    lines = []
    for finding in report.locks:
        if finding.allowed:
            lines.append(f"- allowed: {_cell(finding.message)} (the revision says why)")
        elif finding.severity in ("error", "warning"):
            lines.append(
                f"- **{finding.kind}** ({finding.severity}) {_cell(finding.message)}; "
                f"instead: {_cell(finding.instead)}"
            )
    lines += [f"- {line}" for line in notes(report.locks, report.lock_timeout)]
    if not lines:
        return []
    errors = len(report.lock_errors)
    head = f"**Locks:** {errors} error(s)." if errors else "**Locks:** no error."
    return [head, *lines, ""]


def _round_trip(report: StagingReport, label: Callable[[Sequence[str]], str]) -> list[str]:
    failure = report.failure
    if failure is None:
        floor = report.floor_description(label)
        return [f"**Round trip:** passed, down to `{floor}` and up to head again.", ""]
    what = "**Round trip:** failed."
    if report.failed_phase == "build":
        what = f"**Could not build the database at `{label((report.start,))}`.**"
    lines = [f"{what} {_cell(str(failure))}", ""]
    if failure.statement:
        lines += ["```sql", failure.statement.strip(), "```", ""]
    return lines


def _step_round_trip(report: StagingReport) -> list[str]:
    if not report.step_round_trip:
        return [f"Step round trip: {report.step_scope}.", ""] if report.step_scope else []
    names = {revision.revision: display_name(revision) for revision in report.history}
    lines = [
        f"Step round trip: skipped `{names[rev]}` ({why})."
        for rev, why in report.step_skipped.items()
    ]
    for rev in report.step_broken:
        difference = report.step_diffs.get(rev)
        failure = report.step_failures.get(rev)
        if difference is not None:
            lines += [
                f"**Step round trip:** `{names[rev]}`'s downgrade does not restore the schema "
                "(+ left behind, - removed):",
                "",
                "```diff",
                *difference,
                "```",
            ]
        if failure is not None:
            lines += [f"**Step round trip:** {_cell(str(failure))}", ""]
    kind, message = report.step_outcome()
    lines.append(
        f"**Step round trip:** {message}." if kind != "info" else f"Step round trip: {message}."
    )
    return [*lines, ""]


def _models(report: StagingReport) -> list[str]:
    if not report.models_configured:
        return ["**Models:** not checked (no metadata configured).", ""]
    if report.model_diffs is None:
        return ["**Models:** not checked (the upgrade failed first).", ""]
    if not report.model_diffs:
        return ["**Models:** match the schema at head.", ""]
    lines = ["**Models:** differ from the schema at head; the missing revision would do:", ""]
    lines += ["```", *describe_all(report.model_diffs), "```", ""]
    if report.model_sql:
        lines += ["```sql", report.model_sql.strip(), "```", ""]
    return lines


def _lint_cell(findings: list[Finding]) -> str:
    if not findings:
        return "clean"
    failing = sum(1 for finding in findings if finding.failing)
    return f"{failing} failing, {len(findings) - failing} other"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def measured_locks(page: str) -> dict[str, str]:
    """Each revision's locks and rewrites as a report ``render`` wrote states them, by the
    revision's name (``0002_add_priority``): for a page that shows them beside the revision."""
    import re

    found = {}
    for line in page.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == len(PHASES) + 3:
            found[cells[0].strip("`")] = cells[len(PHASES) + 1]
    return found
