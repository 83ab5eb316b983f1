"""``migrate-staging --step-roundtrip``: what a downgrade fails to restore, in the fewest true
lines (an extension as one object, a changed function as a change, not as two objects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.main import main
from migrail.postgres.ephemeral import Server
from testing.projects import write_revision

VERDICT = (
    "error: {}: its downgrade does not restore the schema from before its upgrade "
    "(+ left behind, - removed):\n"
)


def _step_roundtrip(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["migrate-staging", "--step-roundtrip", "--no-data"]) == 1
    return capsys.readouterr().err


def _plpgsql(name: str, body: str, create: str = "CREATE") -> str:
    """An ``op.execute`` line creating a PL/pgSQL function of one text argument."""
    return (
        f'op.execute("{create} FUNCTION {name}(t text) RETURNS text LANGUAGE plpgsql AS $$\\n'
        f'BEGIN\\n  {body}\\nEND\\n$$")'
    )


def test_an_extension_left_behind_is_one_line_not_its_members(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project, "0002", "citext", "0001", 'op.execute("CREATE EXTENSION IF NOT EXISTS citext")'
    )
    err = _step_roundtrip(capsys)
    assert VERDICT.format("0002_citext") + "  + extension citext\n" in err, err
    assert "+ function" not in err and "citext(" not in err, err


def test_a_function_a_downgrade_does_not_restore_is_a_changed_definition(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "label",
        "0001",
        _plpgsql("task_label", "RETURN upper(t);"),
        downgrade='op.execute("DROP FUNCTION task_label(text)")',
    )
    write_revision(
        project,
        "0003",
        "lower_label",
        "0002",
        _plpgsql("task_label", "RETURN lower(t);", "CREATE OR REPLACE"),
    )
    err = _step_roundtrip(capsys)
    assert (
        VERDICT.format("0003_lower_label")
        + '  ~ function public.task_label(t text): definition changed: "RETURN upper(t);" '
        'became "RETURN lower(t);"\n'
    ) in err, err
    assert "+ function" not in err and "- function" not in err, err


def test_a_unique_index_recreated_as_not_unique_is_named(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "unique_name",
        "0001",
        'op.create_index("tasks_name_key", "tasks", ["name"], unique=True)',
        downgrade='op.drop_index("tasks_name_key")',
    )
    write_revision(
        project,
        "0003",
        "drop_unique_name",
        "0002",
        'op.drop_index("tasks_name_key")',
        downgrade='op.create_index("tasks_name_key", "tasks", ["name"])',
    )
    err = _step_roundtrip(capsys)
    assert (
        VERDICT.format("0003_drop_unique_name")
        + "  + index CREATE INDEX tasks_name_key ON public.tasks USING btree (name)\n"
        "  - index CREATE UNIQUE INDEX tasks_name_key ON public.tasks USING btree (name)\n"
    ) in err, err


def test_an_enum_its_downgrade_never_drops_is_named(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "labels",
        "0001",
        'op.create_table("labels", sa.Column("level", sa.Enum("low", "high", name="level")))',
        downgrade='op.drop_table("labels")',
    )
    err = _step_roundtrip(capsys)
    assert VERDICT.format("0002_labels") + "  + enum public.level ('low', 'high')\n" in err, err


def test_each_kind_of_object_a_downgrade_forgets_is_named_in_one_run(
    project: Path, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A default, a constraint, a sequence, an enum's new value and an index built in an
    autocommit block, each left behind by its own revision's downgrade: every one is named,
    read at the end of the downgrade's transaction, and the run goes on after each."""
    forgets = {
        "default": 'op.alter_column("tasks", "owner", server_default="nobody")',
        "check": 'op.create_check_constraint("tasks_name_short", "tasks", "length(name) < 200")',
        "sequence": 'op.execute("CREATE SEQUENCE task_numbers")',
        "levels": "op.execute(\"CREATE TYPE level AS ENUM ('low', 'high')\")",
        "urgent": "op.execute(\"ALTER TYPE level ADD VALUE 'urgent'\")",
        "status_index": "with op.get_context().autocommit_block():\n        "
        'op.create_index("tasks_status_idx", "tasks", ["status"], postgresql_concurrently=True)',
    }
    parent = "0001"
    for number, (slug, upgrade) in enumerate(forgets.items(), start=2):
        downgrade = 'op.execute("DROP TYPE level")' if slug == "levels" else "pass"
        write_revision(project, f"{number:04d}", slug, parent, upgrade, downgrade=downgrade)
        parent = f"{number:04d}"
    err = _step_roundtrip(capsys)
    for name, lines in (
        (
            "0002_default",
            "  + column public.tasks.owner text DEFAULT 'nobody'::text\n"
            "  - column public.tasks.owner text\n",
        ),
        (
            "0003_check",
            "  + constraint public.tasks tasks_name_short: CHECK ((length(name) < 200))\n",
        ),
        (
            "0004_sequence",
            "  + sequence public.task_numbers bigint start 1 increment 1 min 1 "
            "max 9223372036854775807 cache 1\n",
        ),
        (
            "0006_urgent",
            "  + enum public.level ('low', 'high', 'urgent')\n"
            "  - enum public.level ('low', 'high')\n",
        ),
        (
            "0007_status_index",
            "  + index CREATE INDEX tasks_status_idx ON public.tasks USING btree (status)\n",
        ),
    ):
        assert VERDICT.format(name) + lines in err, err
    assert "error: 0005_levels" not in err, err
    assert "error: step round trip: 5 of 7 downgrades broken\n" in err, err


@pytest.mark.parametrize("width", [1595, 1596], ids=["again runs out", "upgrade runs out"])
def test_a_table_out_of_column_numbers_by_the_round_trips_is_no_broken_downgrade(
    project: Path, capsys: pytest.CaptureFixture[str], width: int
) -> None:
    """PostgreSQL gives a table 1,600 column numbers, and a dropped column keeps its: each
    round trip of an added column spends two. The columns added to a table of ``width`` fit in
    a plain upgrade, but not after the round trips before them, whichever move runs out first
    (the upgrade run again, or the next first upgrade): that is the round trip's doing, not a
    broken downgrade. Each such revision's round trip runs again on a new database."""
    columns = ", ".join(f"c{i} int" for i in range(width))
    write_revision(
        project,
        "0002",
        "wide",
        "0001",
        f'op.execute("CREATE TABLE wide ({columns})")',
        'op.execute("DROP TABLE wide")',
    )
    for number in range(3, 3 + 1600 - width):
        write_revision(
            project,
            f"{number:04d}",
            f"add_{number}",
            f"{number - 1:04d}",
            f'op.add_column("wide", sa.Column("a{number}", sa.Integer()))',
            f'op.drop_column("wide", "a{number}")',
        )
    added = [f"a{number}" for number in range(3, 3 + 1600 - width)]
    models = project / "tasks_models.py"
    models.write_text(
        models.read_text()
        + "\nfrom sqlalchemy import Integer\n\nwide = Table(\n    'wide',\n    metadata,\n"
        + "".join(f"    Column({name!r}, Integer),\n" for name in [f"c{i}" for i in range(width)])
        + "".join(f"    Column({name!r}, Integer),\n" for name in added)
        + ")\n"
    )
    assert main(["migrate-staging", "--no-cache", "--step-roundtrip", "--no-data"]) == 0, (
        capsys.readouterr().err
    )
    err = capsys.readouterr().err
    # The last column's round trip needs two numbers more than the table has, on any database.
    assert (
        f"[✓] step round trip: {1 + len(added)} downgrade(s) restored the schema; 1 not judged "
        "(its table has too few column numbers left for a round trip: PostgreSQL gives a table "
        "1,600, and a dropped column keeps its)\n"
    ) in err, err
    assert "broken" not in err and "at most 1600 columns" not in err


def test_a_comment_its_downgrade_forgets_is_named(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "comments",
        "0001",
        "op.execute(\"COMMENT ON TABLE tasks IS 'what is to be done'\")\n"
        "    op.execute(\"COMMENT ON COLUMN tasks.status IS 'open or done'\")",
        'op.execute("COMMENT ON TABLE tasks IS NULL")',
    )
    assert main(["migrate-staging", "--step-roundtrip", "--no-data"]) == 1
    err = capsys.readouterr().err
    assert "+ comment public.tasks.status 'open or done'" in err, err
    assert "comment public.tasks 'what is to be done'" not in err
