"""Fixtures: one real PostgreSQL server per test session, a fresh database per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.postgres.ephemeral import ADMIN_URL_ENV, SOURCE_ENV, WARM_ENV, Server, ephemeral_server

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
# The server the developer or CI gives for the suite; only pg_server uses it, and through it the
# tests that ask for it: every other test runs as on a machine where it is not set.
GIVEN_ADMIN_URL = os.environ.pop(ADMIN_URL_ENV, None)
ENV_VARIABLES = (
    "DATABASE_URL",
    "DATABASE_URL_TEST",
    "PRODUCTION_DATABASE_URL",
    "STAGING_DATABASE_URL",
    ADMIN_URL_ENV,
    SOURCE_ENV,
    WARM_ENV,
    "MIGRAIL_PG_USER",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault tests first: they run for minutes where others take seconds, and started last
    on parallel workers they would leave one worker running them alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("faults") is None)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The suite's server: MIGRAIL_ADMIN_URL's when set, otherwise a throwaway one of migrail's."""
    with contextlib.ExitStack() as stack:
        if GIVEN_ADMIN_URL:
            os.environ[ADMIN_URL_ENV] = GIVEN_ADMIN_URL  # read once, when the server is reached
        try:
            server = stack.enter_context(ephemeral_server())
        finally:
            os.environ.pop(ADMIN_URL_ENV, None)
        yield server


@pytest.fixture
def database_url(pg_server: Server) -> Iterator[URL]:
    """A fresh, empty database, dropped after the test."""
    with pg_server.database() as url:
        yield url


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """No test sees the developer's database variables; commands reuse the suite's server."""
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    if "pg_server" in request.fixturenames:
        server: Server = request.getfixturevalue("pg_server")
        admin = server.admin_url.render_as_string(hide_password=False)
        monkeypatch.setenv(ADMIN_URL_ENV, admin)


@pytest.fixture(autouse=True)
def _own_templates_dropped(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's projects (any ``migrations`` folder under its tmp_path) keep no templates after
    it: on a server others share, the suite drops only what its own projects cached."""
    if "pg_server" not in request.fixturenames:
        yield
        return
    server: Server = request.getfixturevalue("pg_server")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    yield
    from migrail.staging.templates import clear_templates, project_key

    for migrations in tmp_path.rglob("migrations"):
        if migrations.is_dir():
            clear_templates(server.admin_url, project_key(migrations))


@pytest.fixture
def throwaway_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the throwaway databases this test's in-process runs make, from now on: what
    to look for afterwards on a server other runs use too (``testing.postgres.left_behind``)."""
    from migrail.postgres import ephemeral

    made: list[str] = []
    name = ephemeral.throwaway_name

    def recorded() -> str:
        made.append(name())
        return made[-1]

    monkeypatch.setattr(ephemeral, "throwaway_name", recorded)
    return made


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of the test's own for clusters, so other runs cannot disturb it.

    Short (a socket path has a length limit) and open to the server account when run as root.
    """
    from migrail.postgres.warm import stop_warm_clusters

    directory = Path(tempfile.mkdtemp(prefix="mt"))
    directory.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory
    stop_warm_clusters()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def warm(private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warm cluster of this test's own (in its private directory), for every run."""
    monkeypatch.setenv("MIGRAIL_KEEP_WARM", "1")
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    return private_tmp


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the tasks_app scenario, with the repo's own env.py and revision template."""
    root = tmp_path / "tasks_app"
    shutil.copytree(FIXTURES / "tasks_app", root)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, root / "migrations" / name)
    monkeypatch.chdir(root)
    yield root
    for module in [name for name in sys.modules if name == "tasks_models"]:
        del sys.modules[module]
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(tmp_path))]
