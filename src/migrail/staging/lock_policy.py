"""The lock policy: what staging measured each revision doing to pre-existing tables, judged.

Each measured class (``postgres.observe``) has a severity, ``[tool.migrail.locks]`` or its
default (``core.config.LOCK_CLASSES``): an error fails ``migrate-staging`` and says what to do
instead, a warning is named, a note is counted once for the whole run, ``off`` is not said. A
revision accepts a class with ``# migrail: allow CLASS -- reason``, as lint's rules.

Measurement also clears a static false alarm: squawk's ``changing-column-type`` on a revision
staging measured neither rewriting nor scanning a table is only a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from migrail.history.revisions import allows, display_name

if TYPE_CHECKING:
    from alembic.script import Script

    from migrail.lint.findings import Finding
    from migrail.postgres.observe import Effects

# What each class does to the table's users, and what to do instead.
WHAT = {
    "rewrite": "rewrites the whole table under {mode}: {blocks} for as long as that takes",
    "scan-under-exclusive": "scans the whole table under {mode}: {blocks} for as long as "
    "that takes",
    "write-blocking-index-build": "builds an index under {mode}: {blocks} until it is built",
    "exclusive-held-long": "holds {mode} until its transaction ends, {seconds:.1f} s after it "
    "began in staging, on sample rows: {blocks} that long, and longer on production's data",
    "metadata-only": "takes a brief ACCESS EXCLUSIVE for a change of the catalog alone",
}
INSTEAD = {
    "rewrite": "add a new column, backfill it in batches and swap it in, in later revisions "
    "(a type change that keeps the binary form, such as varchar(n) to text, does not rewrite)",
    "scan-under-exclusive": "add the constraint NOT VALID, then VALIDATE it in a later revision "
    "(for SET NOT NULL: a CHECK (col IS NOT NULL) NOT VALID, validated, then SET NOT NULL)",
    "write-blocking-index-build": "CREATE INDEX CONCURRENTLY in an autocommit block "
    "(op.create_index(..., postgresql_concurrently=True)); for a key, build its unique index "
    "so and then ADD CONSTRAINT ... USING INDEX",
    "exclusive-held-long": "keep the lock's transaction short: the ALTER in a revision of its "
    "own, and the slow work (a backfill, a data fix) in another, in batches in an autocommit "
    "block",
    "metadata-only": "nothing: lock_timeout bounds the wait for it",
}
MEASURED_TYPE_CHANGE = "changing-column-type"


@dataclass(frozen=True)
class LockFinding:
    """One pre-existing table one revision did something to, its class and severity."""

    revision: Script
    table: str
    kind: str  # the class
    mode: str
    severity: str  # error, warning or note
    allowed: bool = False  # the revision says why it may, with an allow comment
    # Released and untouched by this branch: it already ran wherever it ran, so it is said,
    # never failed (as lint's baseline); a new revision changes what needs changing.
    baseline: bool = False
    seconds: float = 0.0  # how long the revision's transaction held the lock, in staging

    @property
    def failing(self) -> bool:
        return self.severity == "error" and not self.allowed and not self.baseline

    @property
    def message(self) -> str:
        blocks = "reads and writes wait" if self.mode == "ACCESS EXCLUSIVE" else "writes wait"
        what = WHAT[self.kind].format(mode=self.mode, blocks=blocks, seconds=self.seconds)
        return f"{display_name(self.revision)}: {self.kind} of {self.table}: it {what}"

    @property
    def instead(self) -> str:
        return INSTEAD[self.kind]


def judge(
    revisions: Sequence[Script],
    effects: Mapping[str, Effects],
    severities: Mapping[str, str],
    in_baseline: Callable[[Script], bool] = lambda revision: False,
) -> list[LockFinding]:
    """Every class measured on a pre-existing table, oldest revision first; ``off`` left out.
    ``in_baseline``: whether a revision is released and untouched (its errors do not fail)."""
    found = []
    for revision in revisions:
        measured = effects.get(revision.revision)
        if measured is None:
            continue
        for table, kind in measured.classify().items():
            severity = severities.get(kind, "error")
            if severity == "off":
                continue
            allowed = severity != "note" and allows(revision, kind)
            mode = measured.locks[table]
            baseline = severity == "error" and in_baseline(revision)
            found.append(
                LockFinding(
                    revision, table, kind, mode, severity, allowed, baseline, measured.seconds
                )
            )
    return found


def notes(found: Sequence[LockFinding], lock_timeout: str) -> list[str]:
    """One line per class at ``note``: how many revisions, instead of a line each."""
    lines = []
    for kind in WHAT:
        revisions = {f.revision.revision for f in found if f.kind == kind and f.severity == "note"}
        if not revisions:
            continue
        count = f"{len(revisions)} revision{'s' if len(revisions) > 1 else ''}"
        verb = "takes" if len(revisions) == 1 else "take"
        if kind == "metadata-only":
            lines.append(
                f"{count} {verb} a brief ACCESS EXCLUSIVE for metadata-only changes, "
                f"bounded by lock_timeout {lock_timeout}"
            )
        else:
            lines.append(f"{count}: {kind} (a note, as [tool.migrail.locks] says)")
    return lines


def quiet_measured(findings: Sequence[Finding], effects: Mapping[str, Effects]) -> list[Finding]:
    """squawk's ``changing-column-type`` as a note where staging measured the revision
    rewriting no table and scanning none: the change was to the catalog alone."""
    quieted = []
    for finding in findings:
        measured = effects.get(finding.revision or "")
        if (
            finding.rule == MEASURED_TYPE_CHANGE
            and finding.source == "squawk"
            and measured is not None
            and not measured.rewrote_or_scanned
        ):
            finding = replace(
                finding,
                severity="note",
                message=f"{finding.message} (measured in staging: no rewrite and no scan of "
                "the table, so a note)",
            )
        quieted.append(finding)
    return quieted
