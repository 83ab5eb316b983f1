"""One seeded database, the studio served on it twice (writable as development, read-only as
production, which the project protects), and one Chromium for the module's tests.

Debian's Chromium drives the tests (Playwright cannot download its own browser everywhere);
without it they fail saying how to install it, never skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from migrail.core.config import load_config
from migrail.main import main
from testing.postgres import run_sql
from testing.projects import add_priority_with_revision
from testing.studio import SEED, Served, serve, wide_schema

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from sqlalchemy.engine import URL

    from migrail.core.config import Config
    from migrail.postgres.ephemeral import Server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def studio_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tasks project, which a pending revision (0002, adds tasks.priority) is added to."""
    root = tmp_path_factory.mktemp("studio") / "tasks_app"
    shutil.copytree(REPO / "tests" / "fixtures" / "tasks_app", root)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, root / "migrations" / name)
    return root


@pytest.fixture(scope="module")
def studio_url(pg_server: Server, studio_project: Path) -> Iterator[URL]:
    """A database migrated to 0001 by ``migrail migrate``, then seeded; 0002 left pending."""
    with pg_server.database() as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
        assert main(["migrate", "--project", str(studio_project)]) == 0
        run_sql(url, SEED + wide_schema())
        run_sql(
            url, "INSERT INTO tasks (id, name, status) VALUES ('t1', 'write the studio', 'doing')"
        )
        add_priority_with_revision(studio_project)
        yield url


@pytest.fixture(scope="module")
def studio_config(studio_project: Path, studio_url: URL) -> Config:
    return load_config(studio_project)


@pytest.fixture(scope="module")
def staging_report(studio_project: Path, studio_url: URL) -> Path:
    """``migrate-staging --report``'s page on the project, 0002 measured in it."""
    report = studio_project / "staging.md"
    assert main(["migrate-staging", "--project", str(studio_project), "--report", str(report)]) == 0
    return report


@pytest.fixture(scope="module")
def writable(studio_config: Config, studio_url: URL, staging_report: Path) -> Iterator[Served]:
    with serve(studio_config, studio_url, "development", staging_report) as served:
        yield served


@pytest.fixture(scope="module")
def protected(studio_config: Config, studio_url: URL) -> Iterator[Served]:
    with serve(studio_config, studio_url, "production") as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(
            f"the studio's browser tests drive Debian's Chromium, and {CHROMIUM} is missing: "
            "apt-get install -y chromium"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context each test: no cookie, no token, until the test opens a URL."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()
