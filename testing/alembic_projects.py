"""A plain Alembic project, made the way its developers made it: ``alembic init``, a models
module, ``alembic revision``, and their own options in env.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

ALEMBIC = Path(sys.executable).parent / "alembic"
DATED = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"

MODELS = """\
from sqlalchemy import Column, Integer, MetaData, Table, Text

metadata = MetaData()

Table("accounts", metadata, Column("id", Integer, primary_key=True), Column("name", Text))
"""

# The project keeps a table its models do not declare, and tells autogenerate to ignore it.
INCLUDE_OBJECT = '''

def include_object(object, name, type_, reflected, compare_to):
    """legacy_audit is written by another service: not ours to compare."""
    return not (type_ == "table" and name == "legacy_audit")
'''

REVISIONS = (
    (
        "create accounts",
        'op.create_table("accounts", sa.Column("id", sa.Integer(), primary_key=True))\n'
        '    op.create_table("legacy_audit", sa.Column("id", sa.Integer(), primary_key=True))',
        'op.drop_table("legacy_audit")\n    op.drop_table("accounts")',
    ),
    (
        "add account name",
        'op.add_column("accounts", sa.Column("name", sa.Text()))',
        'op.drop_column("accounts", "name")',
    ),
)


def alembic(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``alembic`` command, run in ``project``."""
    return subprocess.run(
        [str(ALEMBIC), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(project)},
        check=False,
    )


def alembic_project(root: Path, template: str, url: URL, driver: str = "psycopg") -> Path:
    """``alembic init -t template migrations`` in ``root``, with a dated file_template, the
    database at ``url``, the models, include_object and compare_type, and two revisions."""
    root.mkdir()
    done = alembic(root, "init", "-t", template, "migrations")
    assert done.returncode == 0, done.stderr
    ini = root / "alembic.ini"
    address = url.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)
    text = ini.read_text().replace("# file_template = " + DATED, "file_template = " + DATED)
    text = re.sub(
        r"(?m)^sqlalchemy\.url = .*$", "sqlalchemy.url = " + address.replace("%", "%%"), text
    )
    assert "\nfile_template = %%(year)d" in text
    ini.write_text(text)
    (root / "app_models.py").write_text(MODELS)
    env_py = root / "migrations" / "env.py"
    source = env_py.read_text().replace(
        "target_metadata = None\n", "import app_models\n\ntarget_metadata = app_models.metadata\n"
    )
    source = source.replace(
        "\ndef run_migrations_offline", INCLUDE_OBJECT + "\n\ndef run_migrations_offline"
    )
    source = source.replace(
        "target_metadata=target_metadata",
        "target_metadata=target_metadata, include_object=include_object, compare_type=True",
    )
    env_py.write_text(source)
    for message, upgrade, downgrade in REVISIONS:
        done = alembic(root, "revision", "-m", message)
        assert done.returncode == 0, done.stderr
        [path] = [
            p
            for p in (root / "migrations" / "versions").glob("*.py")
            if message.replace(" ", "_") in p.name
        ]
        body = path.read_text()
        body = body.replace(
            '"""Upgrade schema."""\n    pass', f'"""Upgrade schema."""\n    {upgrade}'
        )
        body = body.replace(
            '"""Downgrade schema."""\n    pass', f'"""Downgrade schema."""\n    {downgrade}'
        )
        path.write_text(body)
    return root


def versions(project: Path) -> list[str]:
    """The revision files' names, in the order of the file system's listing, sorted."""
    return sorted(p.name for p in (project / "migrations" / "versions").glob("*.py"))
