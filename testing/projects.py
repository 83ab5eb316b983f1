"""Editing a scenario project the way a developer would: models, revision files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PRIORITY_COLUMN = '    Column("priority", Integer, nullable=False, server_default="0"),\n'


def add_priority_column(project: Path) -> None:
    """Add ``tasks.priority`` to the test project's models."""
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text().replace(
            "from sqlalchemy import Column,", "from sqlalchemy import Column, Integer,"
        )
    )
    add_model_column(models, PRIORITY_COLUMN.strip().rstrip(","))


def add_model_column(models: Path, column: str) -> None:
    """Add ``column`` (Python, ``Column("note", Text)``) to the ``tasks`` table of the models
    file ``models`` (the test project's), after its ``owner`` column."""
    owner = '    Column("owner", Text),\n'
    models.write_text(models.read_text().replace(owner, f"{owner}    {column},\n"))


def add_named_column(project: Path, name: str) -> None:
    """Revision 0002, adding to ``tasks`` a column whose name the Python expression ``name``
    gives when the revision runs (a constant of the application's, say), and ``tasks.note`` in
    the models: what the name is while the history is proven."""
    write_revision(
        project,
        "0002",
        "note",
        "0001",
        f'op.add_column("tasks", sa.Column({name}, sa.Text()))',
        f'op.drop_column("tasks", {name})',
    )
    add_model_column(project / "tasks_models.py", 'Column("note", Text)')


def add_priority_with_revision(project: Path, extra: str = "") -> None:
    """``tasks.priority`` in the models and in revision 0002, which adds it to a live table
    (``extra``: module-level code of the revision's, as ``write_revision`` takes it)."""
    add_priority_column(project)
    write_revision(
        project,
        "0002",
        "add_priority",
        "0001",
        'op.add_column("tasks", sa.Column("priority", sa.Integer(), nullable=False, '
        'server_default="0"))',
        downgrade='op.drop_column("tasks", "priority")',
        extra=extra,
    )


def branches_alembic_reorders(project: Path) -> None:
    """After a line 0001-0003: 0004 follows 0003, 0005 branches from 0002 and creates
    ``audit``, 0006 follows 0003 and adds a column to it (no depends_on: it counts on Alembic's
    order from base, which applies 0005 first), and 0007 merges the three heads; the models
    get ``audit``. From a database at 0003, Alembic's own upgrade to heads applies 0006 before
    0005, and fails."""
    write_revision(project, "0004", "fourth", "0003", 'op.execute("SELECT 4")')
    write_revision(
        project,
        "0005",
        "audit",
        "0002",
        'op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True))',
        'op.drop_table("audit")',
    )
    write_revision(
        project,
        "0006",
        "audit_note",
        "0003",
        'op.add_column("audit", sa.Column("note", sa.Text()))',
        'op.drop_column("audit", "note")',
    )
    write_revision(project, "0007", "merge", ("0004", "0005", "0006"), "pass")
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        + "\nfrom sqlalchemy import Integer\n\n"
        + 'audit = Table("audit", metadata, Column("id", Integer, primary_key=True), '
        + 'Column("note", Text))\n'
    )


def write_revision(
    project: Path,
    revision: str,
    slug: str,
    down_revision: str | tuple[str, ...] | None,
    upgrade: str,
    downgrade: str = "pass",
    extra: str = "",
    file_name: str | None = None,
) -> Path:
    """Write a hand-made revision file; ``upgrade``/``downgrade`` are function bodies."""
    path = project / "migrations" / "versions" / (file_name or f"{revision}_{slug}.py")
    path.write_text(
        f'"""{slug}"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f"revision = {revision!r}\n"
        f"down_revision = {down_revision!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n"
        f"{extra}\n\n"
        f"def upgrade():\n    {upgrade}\n\n\n"
        f"def downgrade():\n    {downgrade}\n"
    )
    return path


def midcommit_history(project: Path) -> None:
    """Revisions 0002-0004 after 0001, as real histories have them (models to match): 0002 commits
    part-way, allowed, to create an index concurrently; 0003 adds a column; 0004 reads a count (it
    cannot render offline) and indexes the column."""
    write_revision(
        project,
        "0002",
        "index_concurrently",
        "0001",
        "op.get_bind().commit()  # migrail: allow ends-transaction -- CONCURRENTLY needs none\n"
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_tasks_name "\n'
        '                   "ON tasks (name)")',
        downgrade='op.drop_index("ix_tasks_name", table_name="tasks")',
    )
    write_revision(
        project,
        "0003",
        "add_priority",
        "0002",
        'op.add_column("tasks", sa.Column("priority", sa.Integer()))',
        downgrade='op.drop_column("tasks", "priority")',
    )
    write_revision(
        project,
        "0004",
        "rank_tasks",
        "0003",
        'count = op.get_bind().execute(sa.text("SELECT count(*) FROM tasks")).scalar()\n'
        '    op.execute(f"UPDATE tasks SET priority = {count} WHERE priority IS NULL")\n'
        '    op.create_index("ix_tasks_priority", "tasks", ["priority"])',
        downgrade='op.drop_index("ix_tasks_priority", table_name="tasks")',
    )
    models = project / "tasks_models.py"
    text = models.read_text().replace("Column, DateTime,", "Column, DateTime, Index, Integer,")
    models.write_text(
        text.replace(
            '    Column("owner", Text),\n',
            '    Column("owner", Text),\n    Column("priority", Integer),\n',
        )
        + 'Index("ix_tasks_name", tasks.c.name)\nIndex("ix_tasks_priority", tasks.c.priority)\n'
    )


def copy_repository(destination: Path) -> Path:
    """A copy of this repository's own project (agent_armor and its migrations) to work on."""
    destination.mkdir()
    for name in ("pyproject.toml", "noxfile.py", "README.md"):
        shutil.copy(REPO / name, destination / name)
    for name in ("src", "migrations"):
        shutil.copytree(REPO / name, destination / name)
    return destination


def add_priority_to_task(root: Path) -> None:
    """Add ``Task.priority`` to agent_armor's models in a copy of the repository."""
    schema = root / "src" / "agent_armor" / "persistence" / "schema.py"
    owner = "    owner: Mapped[str | None] = mapped_column(Text)\n"
    priority = "    priority: Mapped[int] = mapped_column(nullable=False, server_default='0')\n"
    schema.write_text(schema.read_text().replace(owner, owner + priority))


def write_slow_to_lint_revision(project: Path, statements: int = 100_000) -> Path:
    """Revision 0002 runs ``statements`` ALTER TABLEs in one ``op.execute``: squawk takes
    seconds over them, time enough to look at a lint while its temporary files exist."""
    return write_revision(
        project,
        "0002",
        "many_columns",
        "0001",
        'op.execute("\\n".join(f"ALTER TABLE tasks ADD COLUMN c{i} int;" '
        f"for i in range({statements})))",
    )


def write_slow_to_load_revision(project: Path, seconds: float = 60) -> Path:
    """Revision 0002 sleeps when its module is imported: whatever loads the history waits."""
    return write_revision(
        project, "0002", "slow_to_load", "0001", "pass", extra=f"import time\ntime.sleep({seconds})"
    )


_MIGRATIONS = 'migrations = "migrations"'
DATED_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"
DATED_NAMES = {
    "1975ea83b712": "2024_01_02_0304-1975ea83b712_create_tasks",
    "a1b2c3d4e5f6": "2024_02_03_0405-a1b2c3d4e5f6_note_tasks",
    "0f1e2d3c4b5a": "2024_03_04_0506-0f1e2d3c4b5a_tag_tasks",
}


# Alembic's date-based template without the id: the names do not hold the revision ids.
UNDATED_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"
NAMES_WITHOUT_IDS = {
    "1975ea83b712": "2024-01-02-0304_create_tasks",
    "a1b2c3d4e5f6": "2024-02-03-0405_note_tasks",
    "0f1e2d3c4b5a": "2024-03-04-0506_tag_tasks",
}


def date_named_history(
    project: Path,
    naming: str = "alembic",
    template: str = DATED_TEMPLATE,
    names: dict[str, str] = DATED_NAMES,
) -> None:
    """Make the test project one adopted from plain Alembic: Alembic's date-based
    ``file_template`` in ``alembic.ini``, hex ids, three revisions named by that template, and
    ``naming`` as its ``revision_naming`` (``""``: none set). ``names`` (by id) go with
    ``template``: ``NAMES_WITHOUT_IDS`` with ``UNDATED_TEMPLATE``, say."""
    (project / "alembic.ini").write_text(
        f"[alembic]\nscript_location = migrations\nfile_template = {template}\n"
    )
    pyproject = project / "pyproject.toml"
    setting = f'\nrevision_naming = "{naming}"' if naming else ""
    pyproject.write_text(
        pyproject.read_text().replace('migrations = "migrations"', f"{_MIGRATIONS}{setting}")
    )
    migrations = project / "migrations"
    first, second, third = names
    for where, suffix in (("versions", ".py"), ("sql", ".sql"), ("schema", ".sql")):
        old = migrations / where / f"0001_create_tasks{suffix}"
        text = old.read_text().replace("'0001'", f"'{first}'").replace('"0001"', f'"{first}"')
        old.unlink()
        text = text.replace("Revision ID: 0001", f"Revision ID: {first}")
        (migrations / where / f"{names[first]}{suffix}").write_text(text)
    (migrations / "migrail.sum").unlink()
    for revision, parent in ((second, first), (third, second)):
        write_revision(
            project,
            revision,
            "_".join(names[revision].split("_")[-2:]),
            parent,
            'op.execute("SELECT 1")',
            file_name=f"{names[revision]}.py",
        )


# A database made by hand, as a team without migrations has one: an enum, a foreign key, an
# index, a CHECK, server defaults.
HAND_MADE_SCHEMA = """
CREATE TYPE task_state AS ENUM ('todo', 'doing', 'done');
CREATE TABLE owners (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE tasks (
    id bigserial PRIMARY KEY,
    owner_id integer NOT NULL REFERENCES owners (id),
    title text NOT NULL,
    state task_state NOT NULL DEFAULT 'todo',
    priority integer NOT NULL DEFAULT 0 CHECK (priority >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_owner_state ON tasks (owner_id, state);
INSERT INTO owners (email) VALUES ('ada@example.com');
INSERT INTO tasks (owner_id, title) VALUES (1, 'write the baseline');
"""


def unmigrated_project(root: Path) -> Path:
    """A project with migrail configured (no models, no revisions yet), its env.py and template."""
    (root / "migrations").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "adopted"\nversion = "0"\n\n'
        '[tool.migrail]\nmigrations = "migrations"\n\n'
        '[tool.migrail.environments.development]\nurl_env = "DATABASE_URL"\n\n'
        '[tool.migrail.environments.production]\nurl_env = "PRODUCTION_DATABASE_URL"\n'
        "protected = true\n"
    )
    for name in ("env.py", "script.py.mako"):
        shutil.copy(REPO / "migrations" / name, root / "migrations" / name)
    return root


def forge_sum_line(project: Path, name: str, content: bytes | None) -> None:
    """Rewrite ``name``'s line of migrail.sum for ``content`` (``None``: drop the line) and the
    total, by hand, as someone hiding an edit of a released revision would."""
    path = project / "migrations" / "migrail.sum"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("total ")]
    lines = [line for line in lines if line.rpartition(" ")[0] != name]
    if content is not None:
        lines.append(f"{name} sha256:{hashlib.sha256(content).hexdigest()}")
    body = "".join(f"{line}\n" for line in sorted(lines))
    path.write_text(f"{body}total sha256:{hashlib.sha256(body.encode()).hexdigest()}\n")


# A revision that leaves an INVALID index and still succeeds: its unique build fails over the
# duplicates it inserts, and its retry with IF NOT EXISTS finds the failed index and builds nothing.
INVALID_INDEX_UPGRADE = (
    "op.execute(\"INSERT INTO tasks (id, name, status) VALUES ('a', 'same', 'x'), "
    "('b', 'same', 'x')\")\n"
    "    with op.get_context().autocommit_block():\n"
    "        try:\n"
    '            op.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_tasks_name ON tasks (name)")\n'
    "        except sa.exc.IntegrityError:\n"
    "            op.execute(\n"
    '                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix_tasks_name "\n'
    '                "ON tasks (name)"\n'
    "            )"
)
INVALID_INDEX_DOWNGRADE = (
    "with op.get_context().autocommit_block():\n"
    '        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_tasks_name")\n'
    "    op.execute(\"DELETE FROM tasks WHERE id IN ('a', 'b')\")"
)
