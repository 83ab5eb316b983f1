"""The corpus of unsafe revisions, each caught by its rule, and the safe rewrites, passing clean.

Each folder under ``tests/fixtures/lint_corpus`` holds revisions that follow the test project's
``0001_create_tasks``; an unsafe folder is named for the rule that must catch it, with
``--variant`` after it when one rule has several. A ``pyproject.append.toml`` beside the revisions
is added to the project's ``pyproject.toml`` (a ``pg_version``, say).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server

CORPUS = Path(__file__).parents[1] / "fixtures" / "lint_corpus"
UNSAFE = sorted(path.name for path in (CORPUS / "unsafe").iterdir())
SAFE = sorted(path.name for path in (CORPUS / "safe").iterdir())
CAPTURED = "captured-"
VARIANT = "--"
PYPROJECT_EXTRA = "pyproject.append.toml"
# Where each finding must point: the first line of the revision containing this text.
POINTS_AT = {
    "changing-column-type": "op.alter_column",
    "require-concurrent-index-creation": "op.create_index",
    "adding-required-field": "op.add_column",
    "adding-foreign-key-constraint": "op.create_foreign_key",
    "adding-not-nullable-field": "op.alter_column",
    "disallowed-unique-constraint": "op.create_unique_constraint",
    "ban-drop-column": "op.drop_column",
    "ban-drop-table": "op.drop_table",
    "renaming-column": "op.alter_column",
    "renaming-table": "op.rename_table",
    "prefer-identity": "op.create_table",
    "prefer-text-field": "op.alter_column",
    "ban-concurrent-index-creation-in-transaction": "op.create_index",
    "constraint-missing-not-valid": "op.create_check_constraint",
    "backfill-with-ddl": "op.execute",
    "empty-downgrade": "def downgrade",
    "missing-message": "import sqlalchemy",
    "suppression-without-reason": "# migrail: allow",
    "unused-suppression": "# migrail: allow",
    "truncate-table": "op.execute",
    "vacuum-full": "op.execute",
    "cluster-table": "op.execute",
    "lock-table": "op.execute",
    "unbatched-write": "op.execute",
    "enum-value-in-transaction": "ALTER TYPE",
}


def _lint(
    project: Path, scenario: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, object]]]:
    for revision in scenario.glob("*.py"):
        shutil.copy(revision, project / "migrations" / "versions" / revision.name)
    if (extra := scenario / PYPROJECT_EXTRA).is_file():
        with (project / "pyproject.toml").open("a") as pyproject:
            pyproject.write(extra.read_text())
    code = main(["lint", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_corpus_covers_at_least_twelve_unsafe_patterns() -> None:
    assert len(UNSAFE) >= 12


@pytest.mark.parametrize("scenario", UNSAFE)
def test_each_unsafe_revision_is_caught_by_its_rule(
    scenario: str, project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings = _lint(project, CORPUS / "unsafe" / scenario, capsys)
    rule = scenario.removeprefix(CAPTURED).split(VARIANT)[0]
    caught = [f for f in findings if f["rule"] == rule and f["revision"] != "0001"]
    assert caught, f"{rule} not among {[f['rule'] for f in findings]}"
    finding = caught[0]
    assert str(finding["path"]).startswith("migrations/versions/000")
    [revision] = (CORPUS / "unsafe" / scenario).glob("*.py")
    lines = revision.read_text().splitlines()
    marker = POINTS_AT.get(rule)
    expected_line = next((i for i, line in enumerate(lines, 1) if marker and marker in line), None)
    if rule == "missing-message":
        expected_line = 1
    assert finding["line"] == expected_line
    expected_code = 0 if rule == "prefer-identity" else 1  # a warning by default
    assert code == expected_code
    if scenario.startswith(CAPTURED):
        assert finding["sql_from"] == "captured on a throwaway database"
    else:
        assert finding["sql_from"] == "rendered offline"


@pytest.mark.parametrize("scenario", SAFE)
def test_each_safe_rewrite_passes_clean(
    scenario: str, project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings = _lint(project, CORPUS / "safe" / scenario, capsys)
    errors = [f for f in findings if f["severity"] == "error"]
    from_squawk = [
        f
        for f in findings
        if f["source"] == "squawk" and f["rule"] not in ("prefer-bigint-over-int",)
    ]
    assert (code, errors, from_squawk) == (0, [], [])
