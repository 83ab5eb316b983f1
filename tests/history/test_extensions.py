"""The extensions a history creates, read from its files: what a throwaway server must have."""

from __future__ import annotations

from pathlib import Path

from migrail.core.config import load_config
from migrail.history.extensions import created_extensions
from testing.projects import write_revision


def test_a_history_without_extensions_needs_none(project: Path) -> None:
    assert created_extensions(load_config(project)) == {}


def test_extensions_are_read_from_the_revisions_strings_and_sql_files(project: Path) -> None:
    write_revision(
        project,
        "0002",
        "extensions",
        "0001",
        # A comment is no statement, an f-string's placeholder no name; case folds unquoted.
        "# CREATE EXTENSION needs a superuser\n"
        '    op.execute("CREATE EXTENSION IF NOT EXISTS \\"uuid-ossp\\"")\n'
        "    op.execute('create extension PGCRYPTO with schema public')\n"
        '    op.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")\n'
        '    op.execute("CREATE EXTENSION plpgsql")',
    )
    versions = project / "migrations" / "versions"
    (versions / "helpers").mkdir()
    (versions / "helpers" / "search.sql").write_text(
        "-- CREATE EXTENSION commented_out;\nCREATE EXTENSION\n  pg_trgm;"
    )
    (project / "migrations" / "sql" / "0003_composed.sql").write_text(
        '/* rendered */ CREATE EXTENSION IF NOT EXISTS "citext";\n'
    )
    assert created_extensions(load_config(project)) == {
        "citext": "migrations/sql/0003_composed.sql",
        "pg_trgm": "migrations/versions/helpers/search.sql",
        "pgcrypto": "migrations/versions/0002_extensions.py",
        "uuid-ossp": "migrations/versions/0002_extensions.py",
    }
