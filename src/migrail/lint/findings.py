"""Findings as data: what a check found, where, and how bad; rendering them is a separate step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from alembic.script import Script

# "baseline": an error in a released revision this branch did not touch: shown, never failing
# (it already ran wherever it ran; a new revision changes what needs changing). "note": staging
# measured that the finding does not apply (``staging.lock_policy``).
Severity = Literal["error", "warning", "baseline", "note"]

# migrail's own rules, each documented in docs/rules.md; every other rule name is squawk's.
OWN_RULES = frozenset(
    {
        "empty-downgrade",
        "backfill-with-ddl",
        "ends-transaction",
        "truncate-table",
        "vacuum-full",
        "cluster-table",
        "lock-table",
        "unbatched-write",
        "enum-value-in-transaction",
        "file-name-mismatch",
        "missing-message",
        "revision-id-too-long",
        "cannot-render",
        "stale-sql-file",
        "missing-sql-file",
        "orphan-sql-file",
        "suppression-without-reason",
        "unused-suppression",
    }
)


@dataclass(frozen=True)
class Finding:
    """One problem in one revision.

    ``line`` is 1-based in ``path`` (the revision file), ``None`` when no line can be named;
    ``source`` says which checker found it (``squawk`` or ``migrail``).
    """

    rule: str
    severity: Severity
    message: str
    path: Path
    revision: str | None = None
    line: int | None = None
    help: str | None = None
    source: str = "migrail"
    url: str | None = None
    context: dict[str, str] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        return self.severity == "error"


def sort_key(finding: Finding) -> tuple[str, int, str]:
    return (str(finding.path), finding.line or 0, finding.rule)


def own_finding(
    revision: Script,
    rule: str,
    message: str,
    *,
    line: int | None = None,
    help: str | None = None,
    severity: Severity = "error",
) -> Finding:
    """A finding of one of migrail's own rules (documented in docs/rules.md) about ``revision``."""
    return Finding(
        rule=rule,
        severity=severity,
        message=message,
        path=Path(revision.path),
        revision=revision.revision,
        line=line,
        help=help,
        url=f"docs/rules.md#{rule}",
    )
