"""``migrail cleanup``: stop the warm cluster, remove what killed runs left behind (clusters,
temporary directories, throwaway databases), and clear the template cache (on the warm cluster,
by stopping it; on MIGRAIL_ADMIN_URL's server, which other projects may share, by dropping the
templates of the project it is run in, or with ``--all-projects`` every project's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrail.core import output

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console


def cleanup(*, console: Console, project: Path | None = None, all_projects: bool = False) -> int:
    """Stop warm clusters, remove clusters and temporary directories of dead runs, and sweep
    stale throwaway databases."""
    import os

    from migrail.core.scratch import sweep_stale_scratch
    from migrail.core.urls import parse_url
    from migrail.postgres import cluster
    from migrail.postgres.ephemeral import ADMIN_URL_ENV, sweep_stale_databases
    from migrail.postgres.warm import stop_warm_clusters
    from migrail.staging.templates import clear_templates

    stopped, busy = stop_warm_clusters()
    for directory in stopped:
        output.success(console, f"stopped the warm cluster in {directory}")
    for directory in busy:
        output.info(console, f"left the warm cluster in {directory} running: a run is using it")
    for directory in cluster.sweep_stale_clusters():
        output.success(console, f"removed the cluster of a killed run in {directory}")
    for directory in sweep_stale_scratch():
        output.success(console, f"removed the temporary files of a killed run in {directory}")
    if os.environ.get(ADMIN_URL_ENV, "").strip():
        url = parse_url(os.environ[ADMIN_URL_ENV], source=ADMIN_URL_ENV)
        for name in sweep_stale_databases(url):
            output.success(console, f"dropped {name}, left by a run that is gone")
        if all_projects:
            dropped = clear_templates(url, None)
        elif (key := _project_key(project)) is not None:
            dropped = clear_templates(url, key)
        else:
            dropped = []
            output.info(
                console,
                "left the template cache alone: no migrail project here (--all-projects drops "
                "every project's templates)",
            )
        if dropped:
            whose = "of every project" if all_projects else "of this project"
            output.success(
                console, f"dropped {len(dropped)} cached template(s) {whose} of migrate-staging"
            )
    if not busy:
        output.info(console, "Nothing of migrail's is left running")
    return 0


def _project_key(project: Path | None) -> str | None:
    """The template cache's key of the project here (``None``: there is none to read)."""
    from migrail.core.config import load_config
    from migrail.core.errors import FatalError
    from migrail.staging.templates import project_key

    try:
        return project_key(load_config(project).migrations_dir)
    except FatalError:
        return None
