"""Schema snapshots: the models as sorted PostgreSQL DDL, with what CREATE TABLE leaves out."""

from __future__ import annotations

import sqlalchemy as sa

from migrail.history.snapshot import render_schema


def test_tables_indexes_enums_comments_and_late_foreign_keys() -> None:
    metadata = sa.MetaData()
    sa.Table(
        "b_tasks",
        metadata,
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("state", sa.Enum("new", "done", name="task_state")),
        sa.Column("owner", sa.Text(), comment="who owns it"),
        sa.Column(
            "parent", sa.Text(), sa.ForeignKey("a_jobs.id", use_alter=True, name="fk_parent")
        ),
        sa.Index("ix_owner", "owner"),
        comment="work",
    )
    sa.Table("a_jobs", metadata, sa.Column("id", sa.Text(), primary_key=True))
    assert render_schema(metadata) == (
        "CREATE TYPE task_state AS ENUM ('new', 'done');\n\n"
        "CREATE TABLE a_jobs (\n    id TEXT NOT NULL,\n    PRIMARY KEY (id)\n);\n\n"
        "CREATE TABLE b_tasks (\n    id TEXT NOT NULL,\n    state task_state,\n    owner TEXT,\n"
        "    parent TEXT,\n    PRIMARY KEY (id)\n);\n\n"
        "CREATE INDEX ix_owner ON b_tasks (owner);\n\n"
        "COMMENT ON TABLE b_tasks IS 'work';\n\n"
        "COMMENT ON COLUMN b_tasks.owner IS 'who owns it';\n\n"
        "ALTER TABLE b_tasks ADD CONSTRAINT fk_parent FOREIGN KEY(parent) REFERENCES a_jobs (id);\n\n"
    )
