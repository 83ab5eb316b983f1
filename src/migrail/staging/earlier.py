"""What the runs that made a template proved of the revisions it holds, kept with it.

A run that starts from a template proves only the newer revisions, yet its answer is about the
whole history, as a run from base answers: the locks each revision was measured taking (judged
again, by today's policy, baseline and allow comments), the rows each table was given, how far
down the round trip went, and the revisions the step round trip undid and redid. A template is
kept only when its run proved the history, so these are facts of a proven prefix; they are
recorded in the template's description when it is kept (``record``), read back when a run
starts from it (``read``) and merged into that run's report (``merge``), so that the answer of
the run served from the template is the full run's.

One thing cannot be merged: where an earlier run did not undo the revisions it kept (an
irreversible revision after them, since edited), the round trip of the prefix was never run,
and the answer says the round trip went down to the template's revision, as it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrail.postgres.observe import Effects
from migrail.staging.sample_data import DataReport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from alembic.script import Script

    from migrail.staging.proof import StagingReport

# The round trip did not undo the revisions the template holds: said in place of a reason.
NOT_UNDONE = "the run that made its template went no lower, and none since"


@dataclass
class Earlier:
    """The facts of a template's prefix (revision ids, oldest first, as ``revisions``)."""

    revisions: list[str]
    effects: dict[str, Effects] = field(default_factory=dict)
    data: DataReport | None = None  # None: the run made no sample rows
    floor: str = "base"  # how far down the round trip of the prefix went
    floor_reason: str | None = None
    stepped: list[str] = field(default_factory=list)
    step_skipped: dict[str, str] = field(default_factory=dict)


def record(
    report: StagingReport, position: int, revisions: Sequence[str], data: DataReport | None
) -> dict[str, Any]:
    """The facts of the prefix up to ``position`` of ``revisions`` (a proven run's, ``report``
    merged with what its own template held), with ``data`` as it was when the copy was made."""
    prefix = list(revisions[:position])
    ids = set(prefix)
    floor, reason = report.floor, report.floor_reason
    if floor != "base" and floor not in ids:  # it stopped above the prefix: none of it undone
        floor, reason = prefix[-1], NOT_UNDONE
    return {
        "revisions": prefix,
        "effects": {
            rev: {
                "locks": effects.locks,
                "rewrites": effects.rewrites,
                "indexed": effects.indexed,
                "scanned": effects.scanned,
                "seconds": effects.seconds,
            }
            for rev, effects in report.effects.items()
            if rev in ids
        },
        "data": None
        if data is None
        else {
            "rows": data.rows,
            "seeded": data.seeded,
            "skipped": data.skipped,
            "seed_errors": data.seed_errors,
        },
        "floor": floor,
        "floor_reason": reason,
        "stepped": [rev for rev in prefix if rev in report.stepped],
        "step_skipped": {rev: why for rev, why in report.step_skipped.items() if rev in ids},
    }


def read(about: object) -> Earlier | None:
    """The facts a template's description records (``record``); ``None`` where it records
    none, or not in that form (the run then answers for what it proves alone)."""
    if not isinstance(about, dict):
        return None
    try:
        data = about["data"]
        return Earlier(
            revisions=[str(rev) for rev in about["revisions"]],
            effects={
                str(rev): Effects(
                    locks={str(k): str(v) for k, v in found["locks"].items()},
                    rewrites=[str(t) for t in found["rewrites"]],
                    indexed=[str(t) for t in found["indexed"]],
                    scanned=[str(t) for t in found["scanned"]],
                    seconds=float(found["seconds"]),
                )
                for rev, found in about["effects"].items()
            },
            data=None
            if data is None
            else DataReport(
                rows={str(k): int(v) for k, v in data["rows"].items()},
                seeded={str(k): str(v) for k, v in data["seeded"].items()},
                skipped={str(k): str(v) for k, v in data["skipped"].items()},
                seed_errors={str(k): str(v) for k, v in data["seed_errors"].items()},
            ),
            floor=str(about["floor"]),
            floor_reason=None if about["floor_reason"] is None else str(about["floor_reason"]),
            stepped=[str(rev) for rev in about["stepped"]],
            step_skipped={str(k): str(v) for k, v in about["step_skipped"].items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def inherit(data: DataReport, earlier: Earlier) -> None:
    """Start ``data`` (a run's, before it begins) with the rows the prefix's tables were given."""
    if earlier.data is not None:
        data.rows.update(earlier.data.rows)
        data.seeded.update(earlier.data.seeded)
        data.skipped.update(earlier.data.skipped)
        data.seed_errors.update(earlier.data.seed_errors)


def merge(report: StagingReport, earlier: Earlier, prefix: Sequence[Script]) -> None:
    """Make ``report`` (of a run from the template) answer for the whole history: the prefix's
    revisions (``prefix``, the template's, oldest first), their effects, the round trip's floor
    and what the step round trip did there. The table of the run still shows its own
    revisions alone."""
    report.earlier = list(prefix)
    report.effects = {**earlier.effects, **report.effects}
    report.stepped = report.stepped | frozenset(earlier.stepped)
    report.step_skipped = {**earlier.step_skipped, **report.step_skipped}
    if report.data is not None and earlier.data is not None:
        report.data.adopted = 0  # their rows are counted, as the run that made them counted
    if report.floor_reason is None:  # this run went down to the template: the prefix's floor
        report.floor, report.floor_reason = earlier.floor, earlier.floor_reason
