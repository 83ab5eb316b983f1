"""The real ``squawk`` binary (PyPI ``squawk-cli``), run once over one SQL file per revision."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from migrail.core import proc
from migrail.core.config import LintSettings
from migrail.core.errors import FatalError
from migrail.lint.findings import OWN_RULES

RULES_URL = "https://squawkhq.com/docs/"


@dataclass(frozen=True)
class Violation:
    """One item of squawk's JSON report; ``line`` is 1-based in the SQL ``file``."""

    file: Path
    line: int
    rule: str
    message: str
    help: str | None
    # What squawk points at, as written (``b varchar(20)``), when it is short: two findings of
    # one rule in one statement are told apart by it.
    at: str | None = None


def squawk_binary() -> Path:
    """squawk beside this Python (the same virtual environment), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = beside if beside.is_file() else shutil.which("squawk")
    if found is None:
        raise FatalError(
            "squawk is not installed", hint="pip install squawk-cli (migrail depends on it)"
        )
    return Path(found)


def run_squawk(files: list[Path], settings: LintSettings, cwd: Path) -> list[Violation]:
    """Lint each file on its own (squawk checks files separately) and parse the JSON report.

    The rendered SQL carries the transaction boundaries migrail applies revisions with, so
    ``--assume-in-transaction`` stays off: it would make squawk see every BEGIN as nested.
    """
    if not files:
        return []
    command: list[str | Path] = [squawk_binary(), "--reporter", "json"]
    if settings.pg_version:
        command += ["--pg-version", settings.pg_version]
    excluded = [rule for rule in settings.exclude if rule not in OWN_RULES]
    if excluded:
        command += ["--exclude", ",".join(excluded)]
    if settings.squawk_config:
        command += ["--config", settings.squawk_config]
    report = proc.run([*command, *files], cwd=cwd, ok=(0, 1), timeout=300)
    texts: dict[str, list[str]] = {}
    violations = []
    for item in json.loads(report or "[]"):
        name = str(item["file"])
        if name not in texts:
            path = Path(name) if Path(name).is_absolute() else cwd / name
            texts[name] = path.read_text().splitlines() if path.is_file() else []
        violations.append(_violation(item, texts[name]))
    return violations


_AT_LIMIT = 60


def _violation(item: dict[str, object], lines: list[str]) -> Violation:
    line = item.get("line")
    return Violation(
        file=Path(str(item["file"])),
        line=int(line) + 1 if isinstance(line, int) else 1,  # squawk's JSON lines are 0-based
        rule=str(item["rule_name"]),
        message=str(item["message"]),
        help=str(item["help"]) if item.get("help") else None,
        at=_pointed_at(item, lines),
    )


def _pointed_at(item: dict[str, object], lines: list[str]) -> str | None:
    """The words squawk's span covers on its line, with the word before it (a column's name
    before its type); None for a span over several lines, or a long one (a whole statement)."""
    line, start, end = item.get("line"), item.get("column"), item.get("column_end")
    if not (isinstance(line, int) and isinstance(start, int) and isinstance(end, int)):
        return None
    if item.get("line_end", line) != line or not 0 <= line < len(lines) or end <= start:
        return None
    text = lines[line]
    before = text[:start].rstrip().rsplit(None, 1)
    word = before[-1].lstrip("(,") if before else ""
    at = f"{word} {text[start:end]}".strip() if word.isidentifier() else text[start:end]
    return at if len(at) <= _AT_LIMIT else None
