"""A release plan: exactly what will run on a protected database, bound to one id.

``plan`` reads the live database (read-only) and writes ``plan.json``: the environment, the
database's identity, the revision it is at and the one it will reach, each pending revision's
SQL and checksums, the lint findings, who planned it and when; the plan id is a hash over all
of it. ``approve`` binds an approval to that id, and ``apply`` refuses anything that differs.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.core.writes import all_or_nothing
from migrail.history.file_names import with_id

if TYPE_CHECKING:
    from migrail.engine.executor import Executor

PLAN_FORMAT = 1


@dataclass(frozen=True)
class PlannedRevision:
    revision: str
    name: str
    checksum: str  # of the revision file
    sql: str
    sql_checksum: str = ""
    measured: str = ""  # locks on and rewrites of existing tables, applied on a throwaway copy

    @property
    def shown(self) -> str:
        """Its name as output shows it: with its id, unless the name holds it."""
        return with_id(self.name, self.revision)


@dataclass
class Plan:
    environment: str
    database: dict[str, str]
    from_revision: list[str]
    to_revision: str | None
    revisions: list[PlannedRevision]
    findings: list[dict[str, Any]] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    forced: bool = False
    author: str = ""
    created_at: str = ""
    plan_id: str = ""
    direction: str = "upgrade"  # "downgrade": the revisions are undone, newest first
    # Revisions not on the base branch yet: applied here, they are released all the same.
    unmerged: list[str] = field(default_factory=list)
    # The git commit it was made from and the work tree's changes (``release.checkout``); empty
    # outside git, where only the revision files, env.py and the SQL are bound.
    code: dict[str, Any] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        """Everything the id is computed over (all but the id). An upgrade's plan leaves the
        direction out, and the unmerged revisions and the code when there are none, so that
        plans (and their approvals) made before those fields keep their ids."""
        data = asdict(self)
        data.pop("plan_id")
        if data["direction"] == "upgrade":
            data.pop("direction")
        if not data["unmerged"]:
            data.pop("unmerged")
        if not data["code"]:
            data.pop("code")
        return {"format": PLAN_FORMAT, **data}

    def seal(self) -> Plan:
        self.plan_id = compute_id(self.content())
        return self


def compute_id(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_plan_path(path: Path) -> None:
    """Refuse an ``--out`` that names a folder, before the database is read for the plan."""
    if path.is_dir():
        raise FatalError(
            f"--out {path} is a folder: the plan is a file",
            hint=f"name the file, e.g. --out {path / 'plan.json'}",
        )


def write_plan(plan: Plan, path: Path) -> Path:
    """``plan.json`` at ``path``, and ``plan.md`` beside it for reviewers: both, or neither and
    a FatalError saying why (a folder the user may not write, a full disk)."""
    summary = path.with_suffix(".md")
    with all_or_nothing() as writes:
        writes.write(path, json.dumps({**plan.content(), "plan_id": plan.plan_id}, indent=2) + "\n")
        writes.write(summary, render_markdown(plan))
    return summary


def load_plan(path: Path) -> Plan:
    """A plan file, refused if it is not one, or if it was edited after it was written."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise FatalError(
                f"{path} is not a migrail plan (it holds {_json_kind(data)}, not an object)",
                hint="make one: migrail plan --env NAME",
            )
        stated = data.pop("plan_id")
        if data.pop("format") != PLAN_FORMAT:
            raise ValueError("unknown format")
        revisions = [PlannedRevision(**item) for item in data.pop("revisions")]
        plan = Plan(revisions=revisions, **data)
    except FileNotFoundError:
        raise FatalError(
            f"{path} does not exist", hint="make one: migrail plan --env NAME"
        ) from None
    except RecursionError:  # Python's JSON reader recurses once per [ or {
        raise FatalError(
            f"{path} is not a migrail plan (its JSON is nested too deeply)",
            hint="make one: migrail plan --env NAME",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FatalError(f"{path} is not a migrail plan ({type(exc).__name__}: {exc})") from None
    if compute_id(plan.content()) != stated:
        raise FatalError(
            f"{path} was changed after it was planned (its content no longer matches its id)",
            hint="plan again: migrail plan --env NAME",
        )
    plan.plan_id = stated
    return plan


def plan_start(executor: Executor, path: Path) -> str:
    """The revision a release plan starts from; refused when the plan is for another head."""
    plan = load_plan(path)
    if plan.to_revision != executor.head:
        raise FatalError(
            f"{path} takes {plan.environment} to {_label(executor, plan.to_revision)}, "
            f"but this checkout's head is {_label(executor, executor.head)}",
            hint="check out the commit the plan was made from, or plan again",
        )
    if len(plan.from_revision) > 1:
        raise FatalError(
            f"{path} starts from {len(plan.from_revision)} heads "
            f"({executor.label(plan.from_revision)}): staging builds from one revision",
        )
    return plan.from_revision[0] if plan.from_revision else "base"


def _label(executor: Executor, revision: str | None) -> str:
    return executor.label((revision,) if revision else ())


def _json_kind(value: object) -> str:
    """What a JSON value is, in words: ``a number``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    kinds = {int: "a number", float: "a number", str: "a string", list: "a list"}
    return kinds.get(type(value), type(value).__name__)


def render_markdown(plan: Plan) -> str:
    """What a reviewer reads in a pull request or a CI job page."""
    database = plan.database
    lines = [
        f"# Release plan for {plan.environment}",
        "",
        f"- plan id: `{plan.plan_id}`",
        f"- database: `{database.get('name', '?')}` on PostgreSQL {database.get('version', '?')}; "
        + _identity_sentence(plan.environment, database.get("identity", "nothing yet")),
        f"- from `{', '.join(plan.from_revision) or 'base'}` to `{plan.to_revision or 'base'}`",
        f"- planned by {plan.author} at {plan.created_at}",
    ]
    lines += _code_lines(plan.code)
    difference = pg_version_mismatch(database.get("pg_version"), database.get("version", ""))
    if difference is not None:
        lines.append(f"- **PostgreSQL version**: {difference}")
    if plan.forced:
        lines.append("- **forced**: planned in spite of lint errors or drift")
    if plan.direction == "stamp":
        lines.append(
            "- **stamp**: records the revision below as applied without running it; the "
            "database already has its schema"
            + (" (**it drifts: see below**)" if plan.drift else "")
        )
    if plan.direction == "downgrade":
        lines.append(
            "- **downgrade**: undoes the revisions below, newest first; what they added goes "
            "with its data"
        )
    if plan.unmerged:
        lines.append(
            f"- **not merged yet**: {', '.join(plan.unmerged)} "
            "(once applied here, released all the same: merge the branch before changing them)"
        )
    lines += ["", "## Revisions", ""]
    if not plan.revisions:
        lines.append("Nothing is pending.")
    for revision in plan.revisions:
        lines += [f"### {revision.shown}", ""]
        if revision.measured:
            lines += [f"Measured on a throwaway copy of the schema: **{revision.measured}**", ""]
        lines += ["```sql", revision.sql.rstrip(), "```", ""]
    if plan.tables:
        lines += ["## Tables these revisions touch", "", "| table | rows (estimate) | size |"]
        lines += ["| --- | --- | --- |"]
        for name, numbers in sorted(plan.tables.items()):
            lines.append(f"| {name} | {numbers['rows']:,} | {_size(numbers['bytes'])} |")
        lines.append("")
    if plan.drift:
        lines += ["## Drift: the database differs from its recorded revision", "", "```"]
        lines += [*plan.drift, "```", ""]
    if plan.findings:
        lines += ["## Lint findings", ""]
        for finding in plan.findings:
            where = finding["path"] + (f":{finding['line']}" if finding.get("line") else "")
            lines.append(
                f"- {finding['severity']} `{finding['rule']}` in {where}: {finding['message']}"
            )
    return "\n".join(lines) + "\n"


def pg_version_mismatch(pg_version: str | None, live_version: str) -> str | None:
    """How the database's major version differs from ``pg_version`` (``[tool.migrail.lint]``,
    which lint judges by and staging is held to), in words; ``None`` when they agree or it is
    not set."""
    from migrail.postgres.database import major_version

    if pg_version is None or major_version(pg_version) == major_version(live_version):
        return None
    return (
        f"the database runs PostgreSQL {major_version(live_version)}, but pg_version in "
        f"[tool.migrail.lint] says {major_version(pg_version)}: lint and staging judged the "
        "revisions for another version"
    )


def _code_lines(code: dict[str, Any]) -> list[str]:
    """What code the plan binds, as the approver reads it: a commit, uncommitted changes (said
    loudly: no commit holds what the approver would have to read), or none at all."""
    from migrail.release.checkout import shown

    if not code:
        return [
            "- code: **not bound**: not made in a git checkout, so apply checks only the "
            "revision files, env.py and the SQL, not the code they import"
        ]
    lines = [f"- code: commit `{code['commit']}` (apply runs only on that commit)"]
    if code.get("changes"):
        lines.append(
            "- **made from uncommitted changes**: the code that runs is not a commit anyone "
            "reviewed; apply refuses unless the work tree is byte for byte as it was:"
        )
        lines += [f"  - `{change}`" for change in shown(code["changes"])]
    return lines


def _identity_sentence(environment: str, identity: str) -> str:
    """What the database says it is, as the approver reads it (``identity`` as planning put it:
    an environment's name, ``nothing yet``, or ``unknown to the role that planned``)."""
    if identity == "nothing yet":
        return f"it does not say which environment it is yet (this apply records {environment})"
    if identity.startswith("unknown"):
        return f"which environment it says it is is {identity} (apply checks it)"
    return f"it says it is {identity}"


def touched_tables(sql: str) -> set[str]:
    """The tables a revision's SQL alters, indexes, fills or drops (by name, as written)."""
    return {match[1].strip('"') for match in _TOUCHES.finditer(sql)}


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1024:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


_TOUCHES = re.compile(
    r"\b(?:ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?|UPDATE\s+(?:ONLY\s+)?|INSERT\s+INTO\s+"
    r"|DELETE\s+FROM\s+|DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?|\bON\s+(?:ONLY\s+)?)([\w.\"]+)",
    re.IGNORECASE,
)
