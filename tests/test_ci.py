"""The CI definitions in ci/ hang together: they call nox sessions that exist, and the release
applies only after an approval gate, exactly the plan the plan job made.

actionlint, which the issue names for this, installs only by downloading from GitHub, which the
machines this suite runs on cannot reach; these checks are what can be verified here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CI = REPO / "ci"
WORKFLOWS = sorted((CI / "github").glob("*.yml"))


def _sessions() -> set[str]:
    """Every session of the noxfile, as ``nox --list`` shows them (``*`` or ``-`` first)."""
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return {line.split()[1] for line in listed.stdout.splitlines() if line[:2] in ("* ", "- ")}


def _commands(definition: Any) -> list[str]:
    """Every shell line of a workflow or pipeline (``run:`` and ``script:`` entries)."""
    found: list[str] = []
    if isinstance(definition, dict):
        for key, value in definition.items():
            if key in ("run", "script", "before_script"):
                found += [
                    line
                    for item in ([value] if isinstance(value, str) else value)
                    for line in item.splitlines()
                ]
            else:
                found += _commands(value)
    elif isinstance(definition, list):
        for item in definition:
            found += _commands(item)
    return found


@pytest.mark.parametrize(
    "path", [*WORKFLOWS, CI / "gitlab" / ".gitlab-ci.yml"], ids=lambda p: p.name
)
def test_every_nox_session_called_exists(path: Path) -> None:
    definition = yaml.safe_load(path.read_text())
    called = {
        match for line in _commands(definition) for match in re.findall(r"nox -s ([\w-]+)", line)
    }
    assert called, "the pipeline runs through nox sessions"
    assert called <= _sessions()


def test_github_workflows_are_well_formed() -> None:
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert workflow["name"]
        assert True in workflow or "on" in workflow  # YAML 1.1 reads the key "on" as true
        for name, job in workflow["jobs"].items():
            assert job["runs-on"] == "ubuntu-latest", name
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), (name, step)
                if "uses" in step:
                    assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


def test_the_github_release_applies_the_uploaded_plan_behind_the_production_gate() -> None:
    jobs = yaml.safe_load((CI / "github" / "release.yml").read_text())["jobs"]
    assert jobs["apply"]["needs"] == "plan"
    assert jobs["apply"]["environment"] == "production"
    uploaded = next(
        s for s in jobs["plan"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    downloaded = next(
        s
        for s in jobs["apply"]["steps"]
        if s.get("uses", "").startswith("actions/download-artifact")
    )
    assert uploaded["with"]["name"] == downloaded["with"]["name"]
    assert "plan.json" in uploaded["with"]["path"]
    runs = [step.get("run", "") for step in jobs["apply"]["steps"]]
    assert runs.index("nox -s approve -- plan.json") < runs.index(
        "nox -s apply -- --plan plan.json"
    )


def test_the_gitlab_release_waits_for_a_person() -> None:
    pipeline = yaml.safe_load((CI / "gitlab" / ".gitlab-ci.yml").read_text())
    apply = pipeline["apply"]
    assert apply["needs"] == ["plan"]
    assert apply["environment"]["name"] == "production"
    assert [rule.get("when") for rule in apply["rules"]] == ["manual"]
    assert "plan.json" in pipeline["plan"]["artifacts"]["paths"]
    assert apply["script"] == ["nox -s approve -- plan.json", "nox -s apply -- --plan plan.json"]
