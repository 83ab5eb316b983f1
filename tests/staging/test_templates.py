"""The template cache's keys: a template is served only for the very files that shaped it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from migrail.core.config import load_config
from migrail.engine.executor import Executor
from migrail.staging.templates import TemplateCache, project_key, template_cache
from testing.projects import write_revision

NOWHERE = URL.create("postgresql+psycopg", database="postgres")  # keys are made without a server


def _cache(project: Path, settings: bytes = b"data") -> TemplateCache:
    return template_cache(NOWHERE, Executor(load_config(project)), settings)


def _history(project: Path) -> None:
    write_revision(project, "0002", "second", "0001", 'op.execute("SELECT 2")')
    write_revision(project, "0003", "third", "0002", 'op.execute("SELECT 3")')


def test_the_keys_follow_the_content_of_the_revisions_not_their_ids(project: Path) -> None:
    _history(project)
    before = _cache(project)
    assert before.revisions == ["0001", "0002", "0003"]
    assert _cache(project).keys == before.keys  # the same files: the same keys

    second = project / "migrations" / "versions" / "0002_second.py"
    second.write_text(second.read_text().replace("SELECT 2", "SELECT 22"))  # same id and name
    after = _cache(project)
    assert after.revisions == before.revisions
    assert after.keys[0] == before.keys[0]  # the prefix before the edit is still served
    assert after.keys[1] != before.keys[1] and after.keys[2] != before.keys[2]


def test_the_keys_follow_what_else_shapes_a_template(project: Path) -> None:
    _history(project)
    keys = _cache(project).keys
    assert set(_cache(project, settings=b"no data").keys).isdisjoint(keys)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text() + "\n# changed\n")
    assert set(_cache(project).keys).isdisjoint(keys)


def test_a_project_is_its_migrations_folder(project: Path, tmp_path: Path) -> None:
    cache = _cache(project)
    assert cache.project == project_key(project / "migrations")
    assert project_key(tmp_path / "elsewhere" / "migrations") != cache.project
    assert cache.name(1).startswith(f"migrail_tpl_{cache.project}_")


def _app_package(project: Path, base: str = ".") -> Path:
    """The models as ``app.models`` (under ``base``), beside ``app/settings.py``."""
    package = project / base / "app"
    package.mkdir(parents=True)
    for name in ("__init__.py", "models.py", "settings.py"):
        (package / name).write_text("")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("tasks_models:metadata", "app.models:metadata")
    )
    return package.resolve()


@pytest.mark.parametrize(
    ("line", "left_out"),
    [
        ("", True),
        ("from app.models import metadata", True),
        ("from app import models", True),
        ("import app.models", True),
        ("from app import settings", False),
        ("from app import models, settings as s", False),
        ("from app.settings import SCHEMA", False),
        ("import app.settings", False),
    ],
)
def test_the_models_package_is_left_out_unless_env_py_imports_more_of_it(
    project: Path, line: str, left_out: bool
) -> None:
    package = _app_package(project)
    env = project / "migrations" / "env.py"
    env.write_text(f"{line}\n{env.read_text()}")
    assert (package in _cache(project).leave_out) is left_out


@pytest.mark.parametrize(
    "how",
    [
        'op.execute(__import__("importlib").import_module("app.settings").SQL)',
        'op.execute(__import__("app.settings").settings.SQL)',
        "from app.settings import SQL",
        "helper",
    ],
)
def test_the_models_package_is_not_left_out_when_the_history_runs_its_code(
    project: Path, how: str
) -> None:
    package = _app_package(project)
    assert package in _cache(project).leave_out
    if how == "helper":
        (project / "migrations" / "helpers.py").write_text("from app.settings import SQL\n")
        how = 'op.execute("SELECT 2")'
    write_revision(project, "0002", "second", "0001", how)
    assert package not in _cache(project).leave_out


def test_in_a_src_layout_only_the_models_package_is_left_out(project: Path) -> None:
    package = _app_package(project, "src")
    (project / "src" / "shared").mkdir()
    leave_out = _cache(project).leave_out
    assert package in leave_out
    assert (project / "src").resolve() not in leave_out


def test_a_file_the_run_read_in_the_models_package_is_what_a_template_stands_on(
    project: Path,
) -> None:
    """Only the models' modules are left out: a data file beside them that the project's code
    read (a revision's JSON) counts; migrations/ stays out (its files are in the keys)."""
    from migrail.core.environ_reads import recording
    from migrail.staging.templates import sources_of

    package = _app_package(project)
    data = package / "columns.json"
    data.write_text('{"column": "note"}')
    beside = (project / "migrations" / "columns.json").resolve()
    beside.write_text("{}")
    leave_out = _cache(project).leave_out
    assert package in leave_out
    with recording():
        data.read_text()
        beside.read_text()
        sources = sources_of(leave_out)
    assert str(data) in sources
    assert str(beside) not in sources
    assert not any(name.endswith("models.py") for name in sources)
