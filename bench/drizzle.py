"""drizzle-kit's ``generate`` as a baseline, run in the same turns as migrail's ``generate``.

Issue 16 asks that ``migrail generate`` with no model change take at most what drizzle-kit's
takes: the tool the reference team comes from. drizzle-kit compares the TypeScript schema with
the snapshot its last migration left (no database), so its time depends on the schema, not on
the history: the project here has one migration, and the schema of the benchmark's models
(``tasks`` with its ``field_N`` columns, ``histories.make_history``).

drizzle-kit and drizzle-orm are installed with npm into a temporary folder for the run (about
10 s, from the npm registry); without ``npm`` on the machine, there is no such row.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from histories import Command

PACKAGES = ("drizzle-kit@0.31", "drizzle-orm@0.45")
CONFIG = """import { defineConfig } from "drizzle-kit";
export default defineConfig({ dialect: "postgresql", schema: "./schema.ts", out: "./drizzle" });
"""


def drizzle_generate(models: Path, folder: Path) -> Command | None:
    """The command ``drizzle-kit generate`` in a new project at ``folder`` whose schema is the
    tables of ``models`` (the benchmark's ``models.py``), its first migration already generated
    (untimed): timed, it finds no change. ``None`` where npm is not installed."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    folder.mkdir(parents=True)
    subprocess.run([npm, "init", "-y"], cwd=folder, check=True, capture_output=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", *PACKAGES],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    (folder / "drizzle.config.ts").write_text(CONFIG)
    (folder / "schema.ts").write_text(typescript_schema(models.read_text()))
    generate = [str(folder / "node_modules" / ".bin" / "drizzle-kit"), "generate"]
    first = subprocess.run(generate, cwd=folder, check=True, capture_output=True, text=True)
    if not list((folder / "drizzle").glob("0000_*.sql")):
        raise RuntimeError(f"drizzle-kit generate wrote no migration:\n{first.stdout}")
    return Command(generate, folder)


# The column types the benchmark's models use, in drizzle's pg-core.
_TYPES = {
    "Text()": 'text("{name}")',
    "JSONB()": 'jsonb("{name}")',
    "DateTime(timezone=True)": 'timestamp("{name}", {{ withTimezone: true }})',
}
_TABLE = re.compile(r'^(\w+) = sa\.Table\(\s*"(\w+)",\s*metadata,(.*?)^\)', re.DOTALL | re.M)
_COLUMN = re.compile(r'sa\.Column\("(\w+)", (?:sa\.)?([\w.]+\([^)]*\))(.*)\),?$', re.M)


def typescript_schema(models: str) -> str:
    """The tables of the benchmark's ``models.py`` as a drizzle schema (the column types and
    options it uses: text, jsonb, timestamptz; primary key, not null, default now())."""
    tables = []
    for variable, name, body in _TABLE.findall(models):
        columns = []
        for column, kind, options in _COLUMN.findall(body):
            typed = _TYPES[kind].format(name=column)
            if "primary_key=True" in options:
                typed += ".primaryKey()"
            if "nullable=False" in options:
                typed += ".notNull()"
            if "server_default=sa.func.now()" in options:
                typed += ".defaultNow()"
            columns.append(f"  {column}: {typed},")
        tables.append(
            f'export const {variable} = pgTable("{name}", {{\n' + "\n".join(columns) + "\n});\n"
        )
    return 'import { jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";\n\n' + "\n".join(
        tables
    )
