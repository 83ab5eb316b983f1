"""How many unsafe revisions the default pipeline (``migrail lint``, then ``migrate-staging``)
catches, and how many safe ones it lets through.

The cases are the corpus of the tests (``tests/fixtures/lint_corpus``: revisions after the test
project's ``0001_create_tasks``, an unsafe folder named for the rule that must catch it) and
``tests/fixtures/staging_corpus`` (unsafe revisions only a run on a database can catch). Each runs
in a copy of the test project without its models, so that staging judges what the revisions do
and not that the models were left behind, committed on main with the case's revisions on a
branch, as a pull request brings them. A case is caught when either command exits non-zero; a
safe case that does is a false alarm.
Run: python bench/safety.py [--verbose] [--only NAME]   (MIGRAIL_ADMIN_URL makes it faster)
To compare with another checkout: PYTHONPATH=/path/to/other/src python bench/safety.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
CORPORA = (FIXTURES / "lint_corpus", FIXTURES / "staging_corpus")
PYPROJECT_EXTRA = "pyproject.append.toml"
COMMANDS = (["lint"], ["migrate-staging"])


def cases(kind: str, only: str = "") -> list[Path]:
    """Every case folder of ``kind`` (``unsafe`` or ``safe``) in the corpora (with ``only`` in
    its name)."""
    return sorted(
        folder
        for corpus in CORPORA
        if (corpus / kind).is_dir()
        for folder in (corpus / kind).iterdir()
        if only in folder.name
    )


def project_for(case: Path, root: Path) -> Path:
    """The test project, its models left out, on main; the case's revisions on a branch."""
    project = root / case.name
    shutil.copytree(FIXTURES / "tasks_app", project)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, project / "migrations" / name)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('metadata = "tasks_models:metadata"\n', "")
    extra = case / PYPROJECT_EXTRA
    pyproject.write_text(text + (extra.read_text() if extra.is_file() else ""))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for arguments in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "main"]):
        subprocess.run([*git, *arguments], cwd=project, check=True, capture_output=True)
    subprocess.run([*git, "checkout", "-q", "-b", "case"], cwd=project, check=True)
    for revision in case.glob("*.py"):
        shutil.copy(revision, project / "migrations" / "versions" / revision.name)
    return project


def verdicts(project: Path) -> list[str]:
    """The commands that failed on ``project`` (exit 1 or more)."""
    migrail = Path(sys.executable).parent / "migrail"
    failed = []
    for command in COMMANDS:
        run = subprocess.run(
            [str(migrail), *command], cwd=project, capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            failed.append(command[0])
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    parser.add_argument("--only", default="", help="only the cases with this in their name")
    options = parser.parse_args()
    totals: dict[str, list[str]] = {"unsafe": [], "safe": []}
    with tempfile.TemporaryDirectory(prefix="migrail-safety-") as directory:
        for kind in totals:
            for case in cases(kind, options.only):
                failed = verdicts(project_for(case, Path(directory) / kind))
                if failed:
                    totals[kind].append(case.name)
                if options.verbose:
                    shown = ", ".join(failed) or "passed"
                    print(f"  {kind:<6} {case.parent.parent.name}/{case.name:<48} {shown}")
    unsafe, safe = len(cases("unsafe", options.only)), len(cases("safe", options.only))
    print(f"unsafe caught: {len(totals['unsafe'])} of {unsafe}")
    print(f"safe passed:   {safe - len(totals['safe'])} of {safe}")
    missed = sorted({case.name for case in cases("unsafe", options.only)} - set(totals["unsafe"]))
    if missed:
        print(f"missed: {', '.join(missed)}")
    if totals["safe"]:
        print(f"false alarms: {', '.join(totals['safe'])}")


if __name__ == "__main__":
    main()
