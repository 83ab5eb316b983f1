"""A plain Alembic project that keeps its revisions in a folder per year, as Alembic's own
``alembic.ini`` suggests: a ``file_template`` with a folder part and
``recursive_version_locations = true``. Its revisions are written by the real ``alembic
revision`` (which makes this year's folder), then moved to the years they were released in."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL

from testing.alembic_projects import MODELS, alembic

YEARLY = "%%(year)d/%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"

# (message, upgrade, downgrade, the year it was released in)
HISTORY = (
    (
        "create accounts",
        'op.create_table("accounts", sa.Column("id", sa.Integer(), primary_key=True))',
        'op.drop_table("accounts")',
        2024,
    ),
    (  # its constraint is a lint error, released long ago: the baseline, not a failure
        "add account name",
        'op.add_column("accounts", sa.Column("name", sa.Text()))\n'
        "    op.execute(\"ALTER TABLE accounts ADD CONSTRAINT name_set CHECK (name <> '')\")",
        'op.drop_column("accounts", "name")',
        2025,
    ),
)


def yearly_project(root: Path, url: URL) -> Path:
    """``alembic init`` in ``root`` with the yearly template, the models, and two revisions in
    ``versions/2024/`` and ``versions/2025/``."""
    root.mkdir()
    done = alembic(root, "init", "-t", "generic", "migrations")
    assert done.returncode == 0, done.stderr
    ini = root / "alembic.ini"
    address = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    text = re.sub(
        r"(?m)^# file_template = %%\(year\)d/.*$", "file_template = " + YEARLY, ini.read_text()
    )
    text = text.replace(
        "# recursive_version_locations = false", "recursive_version_locations = true"
    )
    text = re.sub(
        r"(?m)^sqlalchemy\.url = .*$", "sqlalchemy.url = " + address.replace("%", "%%"), text
    )
    assert "\nfile_template = %%(year)d/" in text and "\nrecursive_version_locations = true" in text
    ini.write_text(text)
    (root / "app_models.py").write_text(MODELS)
    env_py = root / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "target_metadata = None\n",
            "import app_models\n\ntarget_metadata = app_models.metadata\n",
        )
    )
    for message, upgrade, downgrade, year in HISTORY:
        before = set(revision_files(root))
        done = alembic(root, "revision", "-m", message)
        assert done.returncode == 0, done.stderr
        [written] = set(revision_files(root)) - before
        path = versions(root) / written
        assert path.parent.parent == versions(root), written  # in the folder the template names
        body = path.read_text()
        body = body.replace(
            '"""Upgrade schema."""\n    pass', f'"""Upgrade schema."""\n    {upgrade}'
        )
        body = body.replace(
            '"""Downgrade schema."""\n    pass', f'"""Downgrade schema."""\n    {downgrade}'
        )
        moved = versions(root) / str(year) / f"{year}_03_04_{path.name.split('_', 3)[3]}"
        moved.parent.mkdir(exist_ok=True)
        moved.write_text(body)
        path.unlink()
        if path.parent != moved.parent:
            path.parent.rmdir()
    return root


def versions(root: Path) -> Path:
    return root / "migrations" / "versions"


def revision_files(root: Path) -> list[str]:
    """Every revision file, by its path under ``versions/``."""
    return sorted(p.relative_to(versions(root)).as_posix() for p in versions(root).rglob("*.py"))
