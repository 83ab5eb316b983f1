"""The template cache's keys: a template is served only for the very files that shaped it."""

from __future__ import annotations

from pathlib import Path

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
