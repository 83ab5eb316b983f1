"""``migrations/migrail.sum``: the sha256 of every revision file, and of the list itself.

A released revision (see ``released``) that is in the sum stays as recorded: editing it fails
the check until the sum is deliberately refreshed (``migrail sum --update --force``); the lines
of revisions only this branch has follow their files. The total sits on the last line, so two
branches that each add a revision both change the end of the file and git reports a conflict
when they meet, instead of a second head turning up later (as Atlas's atlas.sum does).

Files are recorded by their path under ``versions/`` (``revision_files.revision_key``): a file
at the top level by its bare name, as every sum before subfolders were read.

A released revision changed on purpose (``migrail sum --update --force``) is recorded with the
digest it had on the base branch after its own: ``name sha256:<now>+released-as:sha256:<was>``,
or ``name removed+released-as:sha256:<was>`` for one removed, so that the change stands out in
review, is bound to that very content, and a version of migrail that does not know the mark
reads a changed line and fails rather than passes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

SUM_FILE = "migrail.sum"
_TOTAL = "total"
_RELEASED_AS = "+released-as:"
REMOVED = "removed"


@dataclass(frozen=True)
class SumProblem:
    """A revision file that disagrees with the sum."""

    kind: str  # "changed", "removed", "unrecorded", "corrupt"
    name: str
    message: str


def digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def mark_released(now: str | None, was: str) -> str:
    """The sum's value for a released revision changed deliberately: its digest ``now`` (``None``:
    removed), and ``was``, its digest on the base branch."""
    return f"{now or REMOVED}{_RELEASED_AS}{was}"


def split_value(value: str) -> tuple[str, str | None]:
    """A sum value as the digest it records (or ``REMOVED``) and, for a released revision
    changed deliberately, the digest it had on the base branch."""
    now, mark, was = value.partition(_RELEASED_AS)
    return now, (was if mark else None)


def render_sum(files: Mapping[str, bytes]) -> str:
    """The sum file for revision files by key: one sorted line each, then the total."""
    return render_digests({name: digest(content) for name, content in files.items()})


def record(text: str | None, files: Mapping[str, bytes]) -> str:
    """The sum with ``files`` added (new revisions); what it already records stays as it was,
    so that writing a new revision never blesses an edit of a released one."""
    if text is None:
        return render_sum(files)
    recorded, _, _ = parse_sum(text)
    digests = {name: digest(content) for name, content in files.items()}
    return render_digests({**digests, **recorded})


def render_digests(digests: Mapping[str, str]) -> str:
    """The sum file for digests by key."""
    body = "".join(f"{name} {value}\n" for name, value in sorted(digests.items()))
    return f"{body}{_TOTAL} {digest(body.encode())}\n"


def parse_sum(text: str) -> tuple[dict[str, str], str | None, str]:
    """Recorded digests by key, the recorded total, and the text the total covers."""
    recorded: dict[str, str] = {}
    total = None
    body = []
    for line in text.splitlines():
        name, _, value = line.strip().rpartition(" ")
        if name == _TOTAL:
            total = value
        elif name:
            recorded[name] = value
            body.append(f"{line.strip()}\n")
    return recorded, total, "".join(body)


def verify(text: str, files: Mapping[str, bytes]) -> list[SumProblem]:
    """Every way ``files`` (the revision files now) differ from the sum ``text``."""
    recorded, total, body = parse_sum(text)
    problems = []
    if total != digest(body.encode()):
        problems.append(
            SumProblem(
                "corrupt", SUM_FILE, f"{SUM_FILE} was edited by hand (its total does not match)"
            )
        )
    for name, value in sorted(recorded.items()):
        value = split_value(value)[0]
        if name not in files and value == REMOVED:
            continue  # removed deliberately: ``released.judge_sum`` holds it to the base branch
        if name not in files:
            problems.append(
                SumProblem("removed", name, f"{name} is recorded in {SUM_FILE} but was removed")
            )
        elif digest(files[name]) != value:
            problems.append(
                SumProblem(
                    "changed", name, f"{name} was changed after it was recorded in {SUM_FILE}"
                )
            )
    for name in sorted(set(files) - set(recorded)):
        problems.append(SumProblem("unrecorded", name, f"{name} is not recorded in {SUM_FILE}"))
    return problems
