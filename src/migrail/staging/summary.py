"""A staging proof for the terminal: the table of revisions and phases, and the verdicts under
it (the data, the locks, the step round trip, the models, the history), as data to print.

``staging_markdown`` says the same for a CI job's summary page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from migrail.engine.diffs import describe_all
from migrail.history.revisions import display_name
from migrail.staging.lock_policy import notes
from migrail.staging.proof import PHASES

if TYPE_CHECKING:
    from alembic.script import Script
    from rich.table import Table

    from migrail.staging.proof import StagingReport

Label = Callable[[Sequence[str]], str]


@dataclass(frozen=True)
class Verdict:
    """One line of the verdict (``info``, ``success`` or ``failure``), and the lines under it."""

    kind: Literal["info", "success", "failure"]
    message: str
    items: Sequence[str] = ()


# Past this many revisions, the table gives a row only to those with something to say (a note,
# a lock beyond a brief metadata-only one, a phase of a second or more) and to the newest few;
# a line stands for each run of the others. The report (``--report``) has every row.
WHOLE_TABLE = 50
NEWEST = 5
_SLOW_SECONDS = 1.0


def summary_table(report: StagingReport) -> Table:
    """Each revision's time in each phase, what it locked or rewrote (and the class of it, in
    red where the lock policy fails it), and what became of it. On a long history, the rows of
    revisions with nothing to say but their times are folded (``WHOLE_TABLE``): a thousand of
    them are a screenful no one reads, and a third of a second to draw."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="migrate-staging", title_justify="left")
    table.add_column("revision")
    for phase in PHASES:
        table.add_column(phase, justify="right")
    table.add_column("locks and rewrites (measured)")
    table.add_column("notes")
    failure = report.failure
    failing = {finding.revision.revision for finding in report.lock_errors}
    revisions = report.revisions
    folding = len(revisions) > WHOLE_TABLE
    folded: list[Script] = []
    for at, revision in enumerate(revisions):
        note = ""
        if failure is not None and failure.revision is revision:
            note = f"[red]{failure.direction} failed[/red]"
        elif revision.revision == report.floor:
            note = f"irreversible: {report.floor_reason}"
        effects = report.effects.get(revision.revision)
        if (
            folding
            and at < len(revisions) - NEWEST
            and not note
            and revision.revision not in failing
            and _brief(report, revision.revision)
        ):
            folded.append(revision)
            continue
        _fold(table, report, folded)
        measured = escape(effects.summary()) if effects else ""
        if revision.revision in failing:
            measured = f"[red]{measured}[/red]"
        table.add_row(display_name(revision), *report.times(revision.revision), measured, note)
    _fold(table, report, folded)
    return table


def _brief(report: StagingReport, revision: str) -> bool:
    """Whether ``revision`` has nothing to say but its times: no lock measured but brief
    metadata-only ones, and no phase of a second or more."""
    effects = report.effects.get(revision)
    if effects is not None:
        classes = effects.classify()
        if any(classes.get(table) != "metadata-only" for table in effects.locks):
            return False
    seconds = (report.timings[phase].get(revision) for phase in PHASES)
    return all(s is None or s < _SLOW_SECONDS for s in seconds)


def _fold(table: Table, report: StagingReport, folded: list[Script]) -> None:
    """One row for the revisions in ``folded`` (emptied): how many, their time in each phase
    together, and the most any of them locked."""
    if not folded:
        return
    together = []
    for phase in PHASES:
        ran = [s for r in folded if (s := report.timings[phase].get(r.revision)) is not None]
        together.append(_seconds(sum(ran)) if ran else "")
    locked = any((found := report.effects.get(r.revision)) and found.locks for r in folded)
    count = f"{len(folded)} revision{'s' if len(folded) > 1 else ''}"
    table.add_row(
        f"... {count}", *together, "metadata-only, brief" if locked else "", "", style="dim"
    )
    folded.clear()


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def verdicts(
    report: StagingReport, label: Label, generate: str = "migrail generate NAME"
) -> list[Verdict]:
    """What the proof found, in the order it is told (``generate``: how this project writes a
    revision, for the hint)."""
    return [
        *_data_verdict(report),
        *_locks_verdict(report),
        *_step_verdict(report),
        *_models_verdict(report, generate),
        *_history_verdict(report, label),
    ]


def _data_verdict(report: StagingReport) -> list[Verdict]:
    """The rows the revisions met, and the tables that got none (they prove less)."""
    if report.data is None:
        return [Verdict("info", "data: none (--no-data): the revisions ran on empty tables")]
    return [Verdict("info", f"data: {report.data.summary()}", report.data.problems())]


def _locks_verdict(report: StagingReport) -> list[Verdict]:
    """What the lock policy says of the measurements: each error (and what to do instead), each
    warning and each allowed one by name; the notes counted, a line per class."""
    found = []
    for finding in report.locks:
        if finding.allowed:
            found.append(Verdict("info", f"allowed: {finding.message} (the revision says why)"))
        elif finding.baseline:
            found.append(Verdict("info", f"baseline: {finding.message} (released: not failing)"))
        elif finding.severity in ("error", "warning"):
            kind: Literal["info", "failure"] = "failure" if finding.failing else "info"
            prefix = "" if finding.failing else "warning: "
            found.append(
                Verdict(kind, f"{prefix}{finding.message}", [f"instead: {finding.instead}"])
            )
    found += [Verdict("info", line) for line in notes(report.locks, report.lock_timeout)]
    if report.lock_errors:
        found.append(
            Verdict(
                "info",
                "hint: write the safe form, or accept it in the revision: "
                f"# migrail: allow {report.lock_errors[0].kind} -- why it is safe here",
            )
        )
    return found


def _step_verdict(report: StagingReport) -> list[Verdict]:
    """Name each revision whose downgrade did not give back the schema its upgrade started
    from, or failed; then how many of those it ran were broken, and what it skipped."""
    if not report.step_round_trip:  # nothing stepped: said once, never as a success
        return (
            [Verdict("info", f"step round trip: {report.step_scope}")] if report.step_scope else []
        )
    by_id = {revision.revision: revision for revision in report.history}
    found = [
        Verdict("info", f"step round trip: skipped {display_name(by_id[rev])} ({reason})")
        for rev, reason in report.step_skipped.items()
    ]
    for rev in report.step_broken:
        lines = report.step_diffs.get(rev)
        failure = report.step_failures.get(rev)
        if lines is not None:
            message = (
                f"{display_name(by_id[rev])}: its downgrade does not restore the schema "
                "from before its upgrade (+ left behind, - removed):"
            )
            found.append(Verdict("failure", message, lines))
            if failure is not None:  # what that breaks: the same upgrade, run again
                found.append(Verdict("info", f"  and then: {failure}"))
        elif failure is not None:
            found.append(Verdict("failure", f"{display_name(by_id[rev])}: {failure}"))
            if failure.statement:
                found.append(Verdict("info", f"  statement: {failure.statement.strip()}"))
    kind, message = report.step_outcome()
    found.append(Verdict(kind, f"step round trip: {message}"))
    return found


def _models_verdict(report: StagingReport, generate: str) -> list[Verdict]:
    if not report.models_configured:
        return [Verdict("info", "models: check skipped (no [tool.migrail] metadata configured)")]
    if report.model_diffs is None:
        return [Verdict("info", "models: not checked (the upgrade failed first)")]
    if report.model_diffs:
        return [
            Verdict(
                "failure",
                "the models and the schema at head differ:",
                describe_all(report.model_diffs),
            ),
            Verdict("info", f"hint: write the missing revision: {generate}"),
        ]
    return [Verdict("success", "models match the schema at head")]


# A role is the server's, not the database's: one made by a revision can outlive the run.
_ROLE_EXISTS = re.compile(r'\brole "[^"]+" already exists\b')
_ROLE_HINT = (
    "  roles belong to the server, not the database: another database on it made the role (a "
    "development database migrated there, another project's, or a cached template of an "
    "earlier run, which migrail cleanup drops with the role); a revision that makes a role only "
    "if it is missing (DO $$ ... IF NOT EXISTS (SELECT FROM pg_roles ...) ... $$) runs anywhere"
)


def _history_verdict(report: StagingReport, label: Label) -> list[Verdict]:
    failure = report.failure
    if failure is None:
        floor = report.floor_description(label)
        return [Verdict("success", f"round trip: down to {floor} and up to head again")]
    found = []
    if report.failed_phase == "build":
        found.append(
            Verdict("failure", f"could not build the database at {label((report.start,))}:")
        )
    found.append(Verdict("failure", str(failure)))
    if failure.statement:
        found.append(Verdict("info", f"  statement: {failure.statement.strip()}"))
    from migrail.engine.steps import partly_committed_note

    partly = partly_committed_note(failure)
    if partly is not None:
        found.append(Verdict("info", partly))
    if _ROLE_EXISTS.search(failure.error):
        found.append(Verdict("info", _ROLE_HINT))
    if report.failed_phase == "downgrade" and failure.revision is not None:
        # An adopted history often has downgrades that raise or were never written.
        found.append(
            Verdict(
                "info",
                f"  if {display_name(failure.revision)} cannot be undone, say so in its file: "
                'irreversible = "why" (the round trip then stops above it, and migrate --to '
                "refuses to go below it)",
            )
        )
    if report.data is not None and report.data.rows and report.failed_phase != "build":
        found.append(
            Verdict(
                "info",
                "  the tables held sample rows, as production's do (--no-data runs without them)",
            )
        )
    where = "an unknown revision (it could not be read back)"
    if report.final_revision is not None:
        where = f"revision {label(report.final_revision)}" if report.final_revision else "base"
    found.append(Verdict("info", f"  the database was at {where} when it stopped"))
    return found
