"""One ``migrate-staging`` run: where it starts, the throwaway server and its template cache,
the proof on a new database, the templates it keeps, and the report it writes.

Nothing here prints: what the run is doing goes to ``note``, each applied revision to the
step function ``progress`` gives, and the outcome is returned as data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.history.revisions import display_name, find_revision

if TYPE_CHECKING:
    from pathlib import Path

    from alembic.script import Script
    from sqlalchemy.engine import URL, Connection

    from migrail.engine.executor import Executor
    from migrail.postgres.ephemeral import Server
    from migrail.staging.proof import PhaseEvents, StagingReport
    from migrail.staging.sample_data import DataReport
    from migrail.staging.scope import StepMode, StepScope
    from migrail.staging.templates import TemplateCache

Note = Callable[[str], None]
# A block during which each phase and revision is shown as it runs.
Progress = Callable[[], AbstractContextManager["PhaseEvents"]]


@dataclass(frozen=True)
class Options:
    step: StepMode = "branch"  # which revisions are undone and redone on their own (``scope``)
    data: bool = True
    cache: bool = True


@dataclass(frozen=True)
class StagingRun:
    """The proof, the revisions whose databases were kept as templates for next runs, and the
    server's version (``PostgreSQL 15.20 (Debian...)``'s ``15.20 (Debian...)``)."""

    proof: StagingReport
    kept: list[str]
    server_version: str = ""
    # Where the run started from the template at head (the server's admin URL and the template's
    # name): a run that proved nothing new, whose answer a receipt there can record.
    head_template: tuple[URL, str] | None = None
    # The template at head when the run is over (the one it started from, or the one it kept),
    # where there is one: the models' comparison at head holds for it (``generate_receipt``).
    at_head: tuple[URL, str] | None = None
    # The extensions the history creates, which chose the server (a receipt records them).
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Version:
    """Staging's PostgreSQL against production's, in words, and whether that fails the run."""

    difference: str
    fails: bool


def version_difference(pg_version: str | None, server_version: str) -> str | None:
    """How the staging server's major version differs from production's (``pg_version`` in
    ``[tool.migrail.lint]``), in words; ``None`` when they agree or production's is not given.
    A failure specific to a version (a syntax, a default, a planner's choice) shows only on
    that version."""
    from migrail.postgres.database import major_version

    if pg_version is None:
        return None
    staging, production = major_version(server_version), major_version(pg_version)
    if staging == production:
        return None
    return f"staging ran on PostgreSQL {staging}, production is {production} (pg_version)"


def in_ci() -> bool:
    """Whether this runs in CI: GitHub Actions, GitLab CI and most others set ``CI``."""
    import os

    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def start_revision(executor: Executor, name: str) -> str:
    """The revision id ``--from`` names (id, unique prefix or file stem), or a usage error."""
    if name == "base":
        return name
    revisions = executor.revisions()  # loaded: a history with two heads is refused there
    found = find_revision(revisions, name, "--from")
    if found is None:
        known = ", ".join(display_name(r) for r in revisions[-5:])
        raise FatalError(
            f"--from {name}: no such revision in {executor.config.versions_dir}",
            hint=f"name a revision by its id or file name, e.g. one of: {known}",
        )
    return found.revision


def run_staging(
    executor: Executor, start: str, options: Options, *, note: Note, progress: Progress
) -> StagingRun:
    """Prove the history from ``start`` on a new database of a throwaway server."""
    from migrail.history.extensions import created_extensions
    from migrail.postgres.ephemeral import TemplateGone, ephemeral_server
    from migrail.staging.scope import step_scope

    scope = step_scope(executor, options.step)
    extensions = created_extensions(executor.config, executor.sources)
    with ephemeral_server(extensions=extensions) as server:
        note(f"Staging on a throwaway database: {server.description}, PostgreSQL {server.version}")
        templates = run_template_cache(note, executor, server, start, options, scope)
        cached = templates.longest() if templates is not None else 0
        try:
            run = _prove_on(
                note, progress, server, executor, templates, cached, start, options, scope
            )
        except TemplateGone:  # another run dropped it after it was found: go without it
            note("template cache: its template was just dropped by another run")
            if templates is not None:
                templates.present.clear()  # so that this run makes them again
            run = _prove_on(note, progress, server, executor, templates, 0, start, options, scope)
    run.proof.step_scope = scope.words(run.proof.history)
    return StagingRun(
        run.proof, run.kept, server.version, run.head_template, run.at_head, extensions
    )


def _prove_on(
    note: Note,
    progress: Progress,
    server: Server,
    executor: Executor,
    templates: TemplateCache | None,
    cached: int,
    start: str,
    options: Options,
    scope: StepScope,
) -> StagingRun:
    """One proof on a new database of ``server`` (a copy of the template at ``cached``, when
    not 0), and the revisions whose templates it kept."""
    from copy import deepcopy

    from migrail.staging.earlier import inherit, merge
    from migrail.staging.lock_policy import judge
    from migrail.staging.proof import prove
    from migrail.staging.sample_data import SampleData
    from migrail.staging.templates import RunDatabase

    if templates is not None and cached:
        start = templates.revisions[cached - 1]
        note(
            f"template cache: starting from a copy of the database at "
            f"{executor.label((start,))}, proven by an earlier run and unchanged since"
        )
    elif start != "base":
        note(f"built at {executor.label((start,))} (as deployed); proving only what is newer")
    # Before anything runs, so that a broken one fails as loading them all would: those the
    # run applies (what is built at a given revision too), never those its template holds.
    held = executor.revisions()[:cached] if templates is not None else []
    executor.import_after({r.revision for r in held})
    config = executor.config
    earlier = templates.earlier if templates is not None and cached else None
    rows = SampleData(config.seeds_dir, shown=config.shown) if options.data else None
    if rows is not None and earlier is not None:
        inherit(rows.report, earlier)
    copy_after = templates.copy_points(cached, scope.revisions) if templates else []
    copied: dict[str, DataReport | None] = {}  # the rows as each copy was made
    proof: StagingReport | None = None
    with ExitStack() as databases:
        url = databases.enter_context(
            server.database(templates.name(cached) if templates and cached else None)
        )
        run = RunDatabase(url, templates)

        def copy(revision: str) -> Connection:
            copied[revision] = deepcopy(rows.report) if rows is not None else None
            return run.copy(revision)

        def fresh() -> Connection:
            """A new empty database in place of the run's, which is dropped."""
            with databases.pop_all():  # the replaced database, dropped however this ends
                run.move(databases.enter_context(server.database()))
            return run.connection

        try:
            with progress() as step:
                proof = prove(
                    executor,
                    run.connection,
                    step,
                    start,
                    scope.revisions,
                    rows,
                    cloned=bool(cached),
                    held=held,
                    copy_after=copy_after,
                    copy=copy if templates is not None else None,
                    fresh=fresh,
                )
        finally:
            run.close()
            if proof is not None:
                if earlier is not None:
                    merge(proof, earlier, executor.revisions()[:cached])
                proof.locks = judge(proof.history, proof.effects, config.locks, _baseline(executor))
                proof.lock_timeout = config.lock_timeout
            # Still inside the run: its lock keeps sweeps of other runs off the copies.
            kept = _settle(templates, proof, copied)
            if templates is not None and templates.walked:
                note(
                    "template cache: nothing kept: the project's code read the whole environment "
                    "(os.environ.copy(), dict(os.environ)...), and a template would stand on "
                    "every variable's value; reading the variables it needs by name lets it keep"
                )
    assert proof is not None
    at_head = templates is not None and cached == len(templates.keys)
    head = (server.admin_url, templates.name(cached)) if templates and at_head else None
    now = head
    if templates is not None and templates.keys and templates.revisions[-1] in kept:
        now = (server.admin_url, templates.name(len(templates.keys)))
    return StagingRun(proof, kept, head_template=head, at_head=now)


def run_template_cache(
    note: Note,
    executor: Executor,
    server: Server,
    start: str,
    options: Options,
    scope: StepScope,
) -> TemplateCache | None:
    """The template cache for this run, or ``None`` (and why not, noted) where it has none."""
    import alembic
    import sqlalchemy

    import migrail
    from migrail.staging.templates import files_content, template_cache

    off = None
    if not options.cache:
        off = "off (--no-cache)"
    elif start != "base":
        off = "not used when building at a given revision"
    elif not server.persistent:
        off = (
            "off: this private cluster lives for one run "
            "(MIGRAIL_KEEP_WARM=1 or MIGRAIL_ADMIN_URL keep a server, and templates, between runs)"
        )
    if off is not None:
        note(f"template cache: {off}")
        return None
    config = executor.config
    settings = (
        f"data={options.data} server={server.version}"
        f" migrail={migrail.__version__}"
        f" lock_timeout={config.lock_timeout} statement_timeout={config.statement_timeout}"
        f" alembic={alembic.__version__} sqlalchemy={sqlalchemy.__version__}\n"
    ).encode() + (files_content(config.seeds_dir) if options.data else b"")
    return template_cache(server.admin_url, executor, settings, scope.revisions)


def _settle(
    templates: TemplateCache | None,
    proof: StagingReport | None,
    copied: Mapping[str, DataReport | None],
) -> list[str]:
    """Keep the run's copies as templates when it proved the history, each with what was
    proven of its prefix (``earlier``; ``copied``: the sample rows as each copy was made);
    otherwise drop them. A lock error drops them too: a revision served from a template is not
    measured again, and the next run's answer would rest on a failed one. The revisions whose
    templates were kept."""
    from migrail.staging.earlier import record

    if templates is None:
        return []
    if proof is None or not proof.history_proven or proof.lock_errors:
        templates.discard()
        return []
    revisions = templates.revisions

    def proven(position: int) -> object:
        return record(proof, position, revisions, copied.get(revisions[position - 1]))

    return [revisions[position - 1] for position in templates.keep(proven)]


def write_report(
    path: Path, proof: StagingReport, executor: Executor, version: Version | None = None
) -> None:
    """The Markdown report, with each proven revision's lint findings (squawk and migrail's),
    and how staging's PostgreSQL differs from production's (``version``)."""
    from pathlib import Path as FilePath

    from migrail.lint.linter import lint_history
    from migrail.staging.lock_policy import quiet_measured
    from migrail.staging.staging_markdown import render

    findings, lint_error = None, None
    try:
        proven = {revision.revision for revision in proof.revisions}
        # Only what this run proved is linted (lint --since's way): from a template, that is
        # the newer revisions, not the whole history again.
        everything = len(proven) == len(executor.revisions())
        scope = None if everything else {FilePath(r.path) for r in proof.revisions}
        linted = lint_history(executor, scope).findings
        findings = [f for f in linted if f.revision in proven]
        findings = quiet_measured(findings, proof.effects)
    except FatalError as exc:
        lint_error = exc.message
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            render(proof, executor.label, findings, lint_error, version), encoding="utf-8"
        )
    except OSError as exc:
        raise FatalError(f"cannot write the report {path}: {exc.strerror}") from None


def write_error_report(path: Path, error: FatalError) -> None:
    """The page of a run that stopped on an error; best effort, the error is what matters."""
    from migrail.staging.staging_markdown import render_error

    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_error(error.message, error.hint), encoding="utf-8")


def _baseline(executor: Executor) -> Callable[[Script], bool]:
    """Whether a revision is released and untouched by this branch (git decides; outside git,
    none is): its measured lock errors are the baseline, said and not failed."""
    from pathlib import Path as FilePath

    from migrail.history.released import released
    from migrail.history.revision_files import revision_key

    state = released(executor.config)
    versions = executor.config.versions_dir

    def untouched(revision: Script) -> bool:
        path = FilePath(revision.path)
        return state.in_baseline(revision_key(path, versions), path.read_bytes())

    return untouched
