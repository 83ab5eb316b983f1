"""The ``migrail`` command line: plain argparse, an explicit dispatch, and one error handler.

Heavy imports (SQLAlchemy, Alembic, rich) happen inside the commands, so that ``migrail --help``
and the commit hooks start quickly.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail import __version__
from migrail.core.errors import FatalError, NamedInterrupt, Terminated

if TYPE_CHECKING:
    from rich.console import Console

EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_BUG = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="migrail", description="Safe, boring PostgreSQL schema migrations with Alembic."
    )
    parser.add_argument("--version", action="version", version=f"migrail {__version__}")
    # Also before the command (``migrail --debug status``): each command's own copy of these
    # defaults to SUPPRESS, so that leaving it out there keeps what was given here.
    _shared_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = _command(commands, "generate", "write the next revision from the model changes")
    generate.add_argument("name", help="what the revision does, e.g. add_user_roles")
    generate.add_argument(
        "--empty", action="store_true", help="write an empty revision to fill in by hand"
    )

    staging = _command(commands, "migrate-staging", "prove the history on a throwaway database")
    deployed = staging.add_mutually_exclusive_group()
    deployed.add_argument(
        "--from",
        dest="start",
        default="base",
        metavar="REV",
        help="build the database at REV (what is deployed), then prove only the newer revisions",
    )
    deployed.add_argument(
        "--from-plan",
        type=Path,
        metavar="PLAN",
        help="--from the revision a release plan (plan.json) starts at; its head must be ours",
    )
    stepping = staging.add_mutually_exclusive_group()
    stepping.add_argument(
        "--step-roundtrip",
        dest="step",
        action="store_const",
        const="all",
        default="branch",
        help="undo and redo every revision on its own, checking its downgrade restores the "
        "schema (by default: only the revisions the branch adds, not on the base branch)",
    )
    stepping.add_argument(
        "--no-step-roundtrip",
        dest="step",
        action="store_const",
        const="off",
        help="undo and redo no revision on its own, not even those the branch adds",
    )
    staging.add_argument(
        "--no-data",
        dest="data",
        action="store_false",
        help="leave the tables empty (by default each gets sample rows before each revision)",
    )
    staging.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="prove the whole history, not only what is newer than the cached templates",
    )
    staging.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        help="in CI, only warn when staging's PostgreSQL is not production's major version "
        "([tool.migrail.lint] pg_version)",
    )
    staging.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="also write the result as Markdown (timings, locks, lint, round trip, model diff)",
    )

    migrate = _command(
        commands, "migrate", "apply pending revisions to an environment's database", env=True
    )
    migrate.add_argument(
        "--sql", action="store_true", help="print the SQL that would run instead of running it"
    )
    migrate.add_argument(
        "--to",
        metavar="REV",
        help="go up or down to REV (id, id prefix, file name, base, head, -1, +1) instead of head",
    )
    migrate.add_argument(
        "--yes", action="store_true", help="undo revisions (--to below) without asking"
    )

    plan = _command(commands, "plan", "write what a release would run, for approval", env=True)
    plan.add_argument("--out", type=Path, default=Path("plan.json"), help="default: plan.json")
    plan.add_argument(
        "--force", action="store_true", help="plan in spite of lint errors or drift (recorded)"
    )
    target = plan.add_mutually_exclusive_group()
    target.add_argument(
        "--to", metavar="REV", help="plan going up or down to REV (as migrate --to) instead of head"
    )
    target.add_argument(
        "--stamp",
        action="store_true",
        help="plan recording a pulled database as at the head, without running it",
    )
    _command(commands, "drift", "compare a database with what its revision implies", env=True)
    approve = _command(commands, "approve", "approve a plan: record who and when")
    approve.add_argument("plan_path", type=Path, metavar="PLAN")
    apply = _command(commands, "apply", "apply exactly an approved plan")
    apply.add_argument("--plan", dest="plan_path", type=Path, required=True, metavar="PLAN")

    _command(commands, "rehearse", "plan, approve and apply on a throwaway database", env=True)

    push = _command(
        commands, "push", "make a development database match the models directly", env=True
    )
    push.add_argument(
        "--yes", action="store_true", help="apply changes that lose data without asking"
    )

    pull = _command(
        commands, "pull", "write models and a baseline revision from a live database", env=True
    )
    pull.add_argument(
        "--models",
        type=Path,
        default=None,
        metavar="PATH",
        help="the module to write, e.g. app/models.py (default: [tool.migrail] metadata's)",
    )
    pull.add_argument(
        "--stamp",
        action="store_true",
        help="also record the database as at the baseline (protected ones: plan --stamp)",
    )
    _command(
        commands, "stamp", "record a pulled database as at the head, without running it", env=True
    )

    _command(commands, "status", "show the database's revision and what is pending", env=True)

    importing = _command(
        commands, "import", "load a legacy SQLite database into the migrated schema", env=True
    )
    importing.add_argument("sqlite_url", metavar="SQLITE_URL", help="sqlite:///path/legacy.db")
    importing.add_argument(
        "--map", dest="map_path", type=Path, metavar="FILE", help="renames, drops, conversions"
    )
    importing.add_argument(
        "--append", action="store_true", help="load into tables that already hold rows"
    )
    importing.add_argument(
        "--accept-rejects", action="store_true", help="commit even if some rows are rejected"
    )
    importing.add_argument(
        "--rejects",
        dest="rejects_path",
        type=Path,
        metavar="FILE",
        help="where rejected rows go, with reasons (default: <name>.rejects.jsonl)",
    )
    importing.add_argument(
        "--timezone", metavar="ZONE", help="the zone naive date-times are in, e.g. UTC"
    )

    studio = _command(
        commands, "studio", "browse, query and edit the database, and see its migrations", env=True
    )
    studio.add_argument("--host", default="127.0.0.1", help="the address (default: 127.0.0.1)")
    studio.add_argument(
        "--port", type=int, default=None, help="default: 4983, or a free one if it is taken"
    )
    studio.add_argument(
        "--no-browser", dest="browser", action="store_false", help="only print the URL"
    )
    studio.add_argument(
        "--staging-report",
        type=Path,
        metavar="PATH",
        help="migrate-staging --report's page: show the locks it measured for pending revisions",
    )

    lint = _command(commands, "lint", "check every revision's SQL for unsafe operations")
    lint.add_argument(
        "--since", metavar="GIT_REF", help="only revisions added or changed since GIT_REF"
    )
    lint.add_argument(
        "--fix-sql",
        action="store_true",
        help="rewrite stale migrations/sql/*.sql and write missing ones (released revisions' "
        "only with --all-sql)",
    )
    lint.add_argument(
        "--all-sql",
        action="store_true",
        help="with --fix-sql: also write the SQL of released revisions that have none",
    )
    lint.add_argument(
        "--format",
        choices=("terminal", "json", "github", "sarif"),
        default="terminal",
        help="how to report findings (default: terminal)",
    )

    check = _command(
        commands, "check", "check the history: one head, nothing released edited, models in sync"
    )
    check.add_argument(
        "--only", metavar="CHECKS", help="a comma-separated few: single-head,immutable,schema-sync"
    )
    check.add_argument(
        "--staged", action="store_true", help="judge what is staged for commit (as the hooks do)"
    )

    sums = _command(commands, "sum", "verify migrations/migrail.sum, or refresh it")
    sums.add_argument(
        "--update", action="store_true", help="record every revision file as it is now"
    )
    sums.add_argument(
        "--force",
        action="store_true",
        help="with --update: record released revisions anew too (edited or removed)",
    )

    drop = _command(commands, "drop", "remove an unreleased revision and its SQL, snapshot, sum")
    drop.add_argument("revision", metavar="REV", help="its id, or its file name without .py")

    rebase = _command(commands, "rebase", "move this branch's new revisions after another's head")
    rebase.add_argument(
        "--onto",
        default="main",
        metavar="GIT_REF",
        help="the branch to rebase onto (default: main)",
    )

    _command(commands, "snapshot", "write the head's schema snapshot from the models")

    _command(commands, "init", "adopt migrail here: [tool.migrail], env.py, migrail.sum, snapshot")

    cleanup = _command(
        commands, "cleanup", "stop the warm cluster; remove what killed runs left behind"
    )
    cleanup.add_argument(
        "--all-projects",
        action="store_true",
        help="drop every project's cached templates on MIGRAIL_ADMIN_URL's server, not only this "
        "project's",
    )
    return parser


def run() -> None:
    """The ``migrail`` command: ``main``, then an exit without the interpreter's teardown.

    Tearing down the modules of SQLAlchemy, Alembic and psycopg takes about a tenth of a second,
    which every command would pay after its work is done. The exit handlers still run (the
    project's code may have registered some; one that calls ``os._exit`` may fail a run, not
    pass a failed one), and the output is flushed; while a thread that is not a daemon lives
    (the project's), the exit is the ordinary one, which waits for it.
    """
    import atexit
    import faulthandler
    import os
    import threading

    # A crash no Python code can catch (the project's code calls os.abort(), or a C extension
    # segfaults) still says where it was: the stack, with the revision's file and line, on
    # stderr. The revision's transaction dies with the connection, rolled back.
    faulthandler.enable(all_threads=False)
    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(thread.is_alive() and not thread.daemon for thread in others):
        raise SystemExit(code)
    exit_now = os._exit

    def keep_failure(status: int) -> None:  # an exit handler of the project's code
        exit_now(code or status)  # may fail a run, never turn a failed one into a success

    os._exit = keep_failure  # type: ignore[assignment]
    atexit._run_exitfuncs()
    os._exit = exit_now
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or 1
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one migrail command and return its exit code."""
    _skip_mako_highlighting()
    args = build_parser().parse_args(argv)
    from migrail.core.output import make_console

    console = make_console()
    options = {k: v for k, v in vars(args).items() if k not in ("command", "project", "debug")}
    return _guarded(
        lambda: _dispatch(args.command, args.project, console, options), console, args.debug
    )


def _skip_mako_highlighting() -> None:
    """Keep mako from importing pygments, a tenth of a second of every run.

    Alembic uses mako only to fill in the revision template; mako's error module imports its
    pygments plugin, for highlighting mako's own tracebacks, whenever pygments is installed
    (rich installs it). migrail never shows those, and a commit hook runs migrail every time.
    """
    sys.modules.setdefault("mako.ext.pygmentplugin", None)  # type: ignore[arg-type]


# Each command's function, as "module:function" under migrail.commands, imported only when run.
_COMMANDS = {
    "generate": "generate:generate",
    "migrate-staging": "migrate_staging:migrate_staging",
    "migrate": "migrate:migrate",
    "status": "status:status",
    "studio": "studio:studio",
    "push": "push:push",
    "pull": "pull:pull",
    "stamp": "stamp:stamp",
    "plan": "plan:plan",
    "approve": "approve:approve",
    "apply": "apply:apply",
    "rehearse": "rehearse:rehearse",
    "drift": "drift:drift",
    "lint": "lint:lint",
    "check": "check:check",
    "sum": "sum:sum_command",
    "drop": "drop:drop",
    "snapshot": "snapshot:snapshot",
    "init": "init:init",
    "rebase": "rebase:rebase",
    "cleanup": "cleanup:cleanup",
    "import": "import_sqlite:import_sqlite",
}


def _dispatch(command: str, project: Path | None, console: Console, options: dict[str, Any]) -> int:
    import importlib

    module, _, function = _COMMANDS[command].partition(":")
    run: Callable[..., int] = getattr(
        importlib.import_module(f"migrail.commands.{module}"), function
    )
    if command == "cleanup":  # needs no project: it tidies up the machine
        return run(console=console, project=project, **options)
    if command == "init":  # makes the project: there is no configuration to read yet
        return run((project or Path.cwd()).resolve(), console=console)
    from migrail.core.config import load_config

    return run(load_config(project), console=console, **options)


def _guarded(run: Callable[[], int], console: Console, debug: bool) -> int:
    """FatalError: exit 2 without a traceback; Ctrl-C: 130; SIGTERM: 143 (each naming the
    revision it stopped, if one was running); anything else: 3."""
    from migrail.core.output import failure, info
    from migrail.core.urls import mask_text
    from migrail.engine.usercode import UserCodeError

    try:
        return run()
    except FatalError as exc:
        failure(console, mask_text(exc.message), exc.hint)
        if debug:
            sys.stderr.write(mask_text(traceback.format_exc()))
        return EXIT_USAGE
    except UserCodeError as exc:  # an exit, a second connection: the project's code, said
        failure(console, mask_text(str(exc)))
        return EXIT_FINDINGS
    except SystemExit as exc:  # commands return their code: this came from the project's code
        failure(
            console,
            f"SystemExit({exc.code!r}) raised by the project's code: an exit from user code is a "
            "failure, not a success",
        )
        return EXIT_FINDINGS
    except NamedInterrupt as exc:  # a KeyboardInterrupt, and Terminated for SIGTERM
        headline, *notes = exc.told()
        failure(console, mask_text(headline))
        for note in notes:
            info(console, mask_text(note))
        return 143 if isinstance(exc, Terminated) else 130
    except Terminated:  # a KeyboardInterrupt too: first
        failure(console, "terminated")
        return 143
    except KeyboardInterrupt:
        failure(console, "interrupted")
        return 130
    except Exception as exc:
        failure(
            console,
            f"unexpected {type(exc).__name__}: {mask_text(str(exc))}",
            "this is a bug in migrail: rerun with --debug and report the traceback",
        )
        if debug:
            sys.stderr.write(mask_text(traceback.format_exc()))
        return EXIT_BUG


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    *,
    env: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand with the options every command has (and ``--env`` for those with a target)."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    if env:
        parser.add_argument(
            "--env", dest="env_name", default=None, help="the environment (default: development)"
        )
    _shared_options(parser, top=False)
    return parser


def _shared_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--project`` and ``--debug``, given before the command or after it. The command's own
    copies default to SUPPRESS: argparse would otherwise overwrite a value given before the
    command with the command's default."""
    parser.add_argument(
        "--project",
        type=Path,
        default=None if top else argparse.SUPPRESS,
        help="the project folder (default: found from here)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show tracebacks",
    )
