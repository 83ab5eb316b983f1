"""The project's own ``env.py``, run under migrail's rules.

A project adopted from plain Alembic keeps its ``env.py`` and its ``alembic.ini`` (or
``[tool.alembic]``): their options (``include_object``, ``compare_type``, ``version_table_schema``,
``render_as_batch``...) are the project's choices and stay. What migrail must own is the
session every revision runs on (its advisory lock, its timeouts, its ledger rows, a throwaway
database only migrail knows the URL of) and one transaction per revision. So, while env.py runs,
``configure`` on migrail's ``EnvironmentContext`` *instance* is wrapped: it forces migrail's
connection and ``transaction_per_migration``, merges the callbacks, and keeps everything else.
(Not a subclass: Alembic's ``context`` proxy is registered per class, and a subclass has none.)
"""

from __future__ import annotations

import contextlib
import inspect
import io
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.core.errors import FatalError
from migrail.engine.adopt import honours_connection, imports_migrail
from migrail.engine.flask_app import make_app
from migrail.engine.usercode import UserCodeError
from migrail.history.file_names import DEFAULT_TEMPLATE, project_template

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.engine import Connection

    from migrail.core.config import Config

# The options autogenerate's comparison reads from configure(); captured from env.py so that a
# model comparison filters and compares as the project's own `alembic revision` would.
COMPARE_OPTIONS = (
    "include_object",
    "include_name",
    "include_schemas",
    "compare_type",
    "compare_server_default",
    "render_as_batch",
    "version_table",
    "version_table_schema",
)


def alembic_config(config: Config, **attributes: Any) -> AlembicConfig:
    """An Alembic ``Config``: the project's ``alembic.ini`` / ``[tool.alembic]`` when it has one
    (its settings kept), else one built in code; ``attributes`` reach ``env.py``."""
    from argparse import Namespace

    from alembic.config import Config as AlembicConfig

    ini = project_ini(config)
    pyproject = config.root / "pyproject.toml"
    # quiet: Alembic's own "Generating ..." lines would go to stdout, which is for data. The
    # options env.py may read as its command line's: Alembic's cookbook hook that drops an
    # empty revision reads ``config.cmd_opts.autogenerate`` (``generate`` sets it).
    cfg = AlembicConfig(
        file_=str(ini) if ini is not None else None,
        toml_file=str(pyproject) if _has_tool_alembic(pyproject) else None,
        stdout=io.StringIO(),
        cmd_opts=Namespace(quiet=True, x=None, autogenerate=False, sql=False),
    )
    # Alembic reads a relative script_location against the working directory: made absolute.
    cfg.set_main_option("script_location", str(config.migrations_dir))
    if cfg.get_main_option("prepend_sys_path") == ".":  # the templates' default: the project,
        cfg.set_main_option("prepend_sys_path", str(config.root))  # not the working directory
    # New files are named as the project names them (its alembic.ini beside the migrations
    # too); ConfigParser wants "%" doubled.
    template = project_template(config)
    written = template.template if template is not None else DEFAULT_TEMPLATE
    cfg.set_main_option("file_template", written.replace("%", "%%"))
    # Revisions in subfolders (a template with directories, a folder per release) are part of
    # the history: migrail reads them all (history.revision_files), and so must Alembic.
    cfg.set_main_option("recursive_version_locations", "true")
    if not cfg.get_main_option("truncate_slug_length"):
        cfg.set_main_option("truncate_slug_length", "60")
    cfg.attributes.update(attributes)
    return cfg


def project_ini(config: Config) -> Path | None:
    """The project's ``alembic.ini``: in its root, or inside the migrations folder, where
    ``flask db init`` puts it."""
    candidates = (config.root / "alembic.ini", config.migrations_dir / "alembic.ini")
    return next((path for path in candidates if path.is_file()), None)


def _has_tool_alembic(pyproject: Path) -> bool:
    import tomllib

    try:
        return "alembic" in tomllib.loads(pyproject.read_text()).get("tool", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def set_url(cfg: AlembicConfig, connection: Connection | None) -> None:
    """Give ``sqlalchemy.url`` a parseable value (the target's, password hidden): an adopted
    env.py still builds its engine before it finds migrail's connection, and never connects it."""
    if connection is not None:
        url = connection.engine.url.render_as_string(hide_password=True)
    else:
        url = "postgresql://offline/offline"
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))


def env_py(config: Config) -> Path:
    return config.migrations_dir / "env.py"


def check_honours_connection(config: Config) -> None:
    """Refuse, before it runs, an env.py that would connect by itself: it would reach whatever
    its URL says (maybe a real database) rather than the session migrail locked and set up."""
    path = env_py(config)
    if not honours_connection(path.read_text()):
        raise own_connection(path, config)


def own_connection(path: Path, config: Config) -> FatalError:
    return EnvRefused(
        f"{config.shown(path)} opens its own database connection instead of using migrail's",
        hint="run `migrail init`: it makes env.py use config.attributes['connection'] when "
        "given (and keeps a backup), so plain alembic still works",
    )


def is_migrails(config: Config) -> bool:
    """env.py is migrail's own (it imports ``migrail.alembic_env``): its options are known."""
    return imports_migrail(env_py(config).read_text())


class EnvRefused(FatalError):
    """The project's env.py does what migrail cannot run under: not a revision's failure."""


# The connections Alembic is running revisions on: a transaction env.py begins before (around
# ``configure()``, say) is not a revision's (``steps.StepWatch``). Kept here, not in the
# connection's ``info``, which reconnects a connection the run closed (an interrupt).
_migrating: weakref.WeakSet[Connection] = weakref.WeakSet()
# env.py's transaction, ended to run the revisions, and its ``with`` block: resumed after them.
_theirs: weakref.WeakKeyDictionary[Connection, tuple[Any, Any]] = weakref.WeakKeyDictionary()
# The connections Alembic's ``run_migrations`` returned on: every revision's transaction had
# committed, so what fails after it (env.py's own code) is no revision's.
_migrated: weakref.WeakSet[Connection] = weakref.WeakSet()


def migrating(connection: Connection) -> bool:
    """Whether Alembic is running revisions on ``connection`` (``run_migrations``)."""
    return connection in _migrating


def migrated(connection: Connection) -> bool:
    """Whether Alembic's last ``run_migrations`` on ``connection`` returned: each revision it
    ran committed (its own transaction ends inside it), whatever env.py does afterwards."""
    return connection in _migrated


class Run:
    """What env.py did under the wrapper: how often it configured and ran, with which options."""

    def __init__(self) -> None:
        self.configured = 0
        self.ran = 0
        self.finished = False  # run_migrations returned: a failure now is env.py's own
        self.options: dict[str, Any] = {}


def install(
    env: EnvironmentContext,
    config: Config,
    given: Connection | None,
    run: Run,
    settings: str = "",
) -> None:
    """Wrap ``configure`` and ``run_migrations`` on this ``EnvironmentContext`` instance."""
    from alembic import util
    from alembic.runtime.environment import EnvironmentContext

    original_configure, original_run = env.configure, env.run_migrations
    if given is not None:
        _migrated.discard(given)  # an earlier run's: this one has run no revision yet
    signature = inspect.signature(EnvironmentContext.configure)
    attributes = env.config.attributes
    path = env_py(config)

    def configure(*args: Any, **opts: Any) -> None:
        bound = signature.bind(env, *args, **opts).arguments
        bound.pop("self", None)
        opts = {**bound.pop("kw", {}), **bound}
        run.configured += 1
        if run.configured > 1:
            raise EnvRefused(
                f"{config.shown(path)} configures Alembic more than once (several databases)",
                hint="migrail migrates one database per history: keep one configure() call",
            )
        if env.is_offline_mode():
            for key in ("url", "connection", "output_buffer", "dialect_opts"):
                opts.pop(key, None)
            opts.update(dialect_name="postgresql", literal_binds=True)
        else:
            opts["connection"] = _migrails(opts.get("connection"), given, path, config, settings)
        opts.pop("transactional_ddl", None)
        opts["transaction_per_migration"] = True
        opts.setdefault("target_metadata", attributes.get("target_metadata"))
        # migrail's own env.py passes migrail's callbacks itself: they are not added twice.
        theirs = util.to_tuple(opts.get("on_version_apply"), default=())
        mine = tuple(f for f in attributes.get("on_version_apply", ()) if f not in theirs)
        opts["on_version_apply"] = (*theirs, *mine)
        directives = attributes.get("process_revision_directives")
        if opts.get("process_revision_directives") is not directives:
            opts["process_revision_directives"] = _chain(
                opts.get("process_revision_directives"), directives
            )
        run.options.update(opts)
        original_configure(**opts)

    def run_migrations(**kw: Any) -> None:
        run.ran += 1
        if given is None or env.is_offline_mode():
            original_run(**kw)
            run.finished = True
            return
        # env.py may begin a transaction after configure() (Alembic's old template:
        # ``trans = connection.begin(); context.run_migrations(); trans.commit()``): ended
        # here as in ``configure``, or Alembic would run every revision in it.
        _end_theirs(given, given, settings)
        _migrated.discard(given)
        _migrating.add(given)  # the transactions begun from here are the revisions'
        try:
            original_run(**kw)
            run.finished = True
            _migrated.add(given)
        finally:
            _migrating.discard(given)
            _resume_theirs(given)

    env.configure = configure  # type: ignore[method-assign]
    env.run_migrations = run_migrations  # type: ignore[method-assign]


def _migrails(
    theirs: Any, given: Connection | None, path: Path, config: Config, settings: str
) -> Connection:
    """migrail's connection, if env.py passed it on; refused otherwise."""
    if given is None or theirs is None or _dbapi(theirs) is not _dbapi(given):
        raise own_connection(path, config)
    _end_theirs(theirs, given, settings)
    return given


def _end_theirs(theirs: Connection, given: Connection, settings: str) -> None:
    """End the transaction env.py began on migrail's connection, if it did: it ran SETs before
    ``configure()``, wraps everything in ``with connection.begin():``, or begins one around
    ``run_migrations()`` (Alembic's old template), and Alembic, seeing a transaction it did
    not begin, would run every revision in it, committing none on its own. What it did so
    far commits; the transaction object it holds, and its ``with`` block, are given back a
    new transaction once the revisions have run (``_resume_theirs``): their ``commit()``
    then ends that one."""
    if not theirs.in_transaction():
        return
    held = theirs._transaction, theirs._trans_context_manager
    theirs._trans_context_manager = None  # its block no longer owns the connection meanwhile
    theirs.commit()
    if held[0] is not None:
        _theirs[given] = held
    for setting in settings.split(";")[:-1]:  # migrail's timeouts win over env.py's
        given.exec_driver_sql(setting.strip())
    given.commit()


def _resume_theirs(given: Connection) -> None:
    """Give env.py's transaction (ended by ``_end_theirs``) a new one on the connection, where
    none is open: its ``commit()`` or ``rollback()``, or the end of its ``with`` block, then
    ends that, as they would have ended the one they began."""
    held = _theirs.pop(given, None)
    if held is None or given.closed or given.invalidated or given.in_nested_transaction():
        return
    transaction, block = held
    open_now = given._transaction  # one SQLAlchemy began after the revisions (a read): theirs
    if open_now is not None:
        open_now.is_active = False
    transaction.is_active = True
    given._transaction = transaction
    given._trans_context_manager = block
    if open_now is None:
        given._begin_impl(transaction)


def _dbapi(connection: Any) -> Any:
    try:
        return connection.connection.dbapi_connection
    except AttributeError:
        return None


def _chain(first: Any, then: Any) -> Callable[..., None] | None:
    """The project's ``process_revision_directives``, then migrail's."""
    if first is None or then is None:
        chosen: Callable[..., None] | None = first or then
        return chosen

    def both(context: Any, revision: Any, directives: list[Any]) -> None:
        first(context, revision, directives)
        then(context, revision, directives)

    return both


def check_ran(run: Run, config: Config) -> None:
    """env.py returned without running migrations: say so rather than succeed silently."""
    if run.ran == 0:
        raise EnvRefused(
            f"{config.shown(env_py(config))} returned without running migrations",
            hint="env.py must call context.run_migrations() (inside context.begin_transaction())",
        )


def run_env(
    cfg: AlembicConfig,
    config: Config,
    script: Any,
    given: Connection | None,
    settings: str = "",
    **kw: Any,
) -> Run:
    """Run env.py once with migrail's ``EnvironmentContext`` (``kw``: its ``fn``, ``as_sql``...)."""
    from alembic.runtime.environment import EnvironmentContext

    run = Run()
    if not kw.get("as_sql"):
        check_honours_connection(config)
    set_url(cfg, given)
    env = EnvironmentContext(cfg, script, **kw)
    install(env, config, given, run, settings)
    try:
        with in_app(config), env, kept_logging(), _kept_open(given):
            script.run_env()
    except SyntaxError as exc:
        if exc.filename is None or Path(exc.filename).resolve() != env_py(config).resolve():
            raise
        raise EnvRefused(
            f"{config.shown(env_py(config))}:{exc.lineno}: syntax error in env.py: {exc.msg}",
            hint="fix env.py: python -m py_compile shows the same",
        ) from None
    except Exception as exc:
        if isinstance(exc, (FatalError, UserCodeError)):
            raise  # one already said as it should be
        if run.finished:  # every revision it ran committed: env.py's code after them failed
            raise EnvFailedAfter(_env_failure(config, exc, "after running")) from exc
        if run.ran:
            raise  # a revision's failure
        raise _env_failure(config, exc) from None
    check_ran(run, config)
    return run


class EnvFailedAfter(FatalError):
    """env.py's own code failed once Alembic had run (and committed) the revisions: not a
    revision's failure, nor a refusal before any ran (``EnvRefused``), which the runner tells
    apart: the revisions it ran are done, and said so."""

    def __init__(self, refused: EnvRefused) -> None:
        super().__init__(refused.message, hint=refused.hint)


def _env_failure(config: Config, exc: Exception, when: str = "before running") -> EnvRefused:
    """env.py failed before it ran any migration (or, ``when``, after): its own failure, named
    where it happened, never a revision's nor a bug of migrail's."""
    import traceback

    from migrail.core.urls import mask_text
    from migrail.engine.usercode import located

    where = located(traceback.extract_tb(exc.__traceback__), config.root)
    place = f" {where}" if where else ""
    return EnvRefused(
        f"{config.shown(env_py(config))} failed {when} the migrations: "
        f"{type(exc).__name__}: {mask_text(str(exc))}{place}",
        hint="run it as Alembic would (alembic upgrade head --sql) to see the whole traceback",
    )


@contextlib.contextmanager
def every_environment(config: Config, given: Connection | None, run: Run) -> Iterator[None]:
    """Wrap every ``EnvironmentContext`` made meanwhile (``command.revision`` makes its own)."""
    from alembic.runtime.environment import EnvironmentContext

    original = EnvironmentContext.__init__

    def init(self: EnvironmentContext, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        install(self, config, given, run)

    EnvironmentContext.__init__ = init  # type: ignore[method-assign]
    try:
        with in_app(config), kept_logging():
            yield
    finally:
        EnvironmentContext.__init__ = original  # type: ignore[method-assign]


def in_app(config: Config) -> contextlib.AbstractContextManager[Any]:
    """The application context of the project's Flask app (``[tool.migrail] flask_app``), which
    a Flask-Migrate env.py reads; an app that cannot be made refuses the run before env.py
    starts, as an env.py that cannot run does, not as a revision's failure."""
    if config.flask_app is None:
        return contextlib.nullcontext()
    try:
        app = make_app(config.root, config.flask_app)
    except FatalError as exc:
        raise EnvRefused(exc.message, hint=exc.hint) from None
    context: contextlib.AbstractContextManager[Any] = app.app_context()
    return context


@contextlib.contextmanager
def _kept_open(given: Connection | None) -> Iterator[None]:
    """env.py's ``finally: connection.close()`` (the shape of a bare ``connect()``) must not end
    migrail's session: its lock, its settings and the ledger's writes go on after env.py."""
    if given is None:
        yield
        return
    given.close = lambda: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del given.close


@contextlib.contextmanager
def kept_logging() -> Iterator[None]:
    """env.py's ``fileConfig(config.config_file_name)`` reconfigures logging for the process:
    Alembic's INFO lines would join migrail's output, and existing loggers would be disabled."""
    import logging.config

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    file_config = logging.config.fileConfig
    # env.py imports it afresh on each run: the project's logging setup is for plain alembic.
    logging.config.fileConfig = lambda *args, **kw: None
    disabled = {
        name: logger.disabled
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        logging.config.fileConfig = file_config
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.disabled = disabled.get(name, False)
                if name not in disabled:
                    logger.handlers.clear()
                    logger.setLevel(logging.NOTSET)
                    logger.propagate = True


def options(
    cfg: AlembicConfig, config: Config, script: Any, connection: Connection
) -> dict[str, Any]:
    """The options env.py passes to ``configure()``, from a run that applies nothing."""
    run = run_env(
        cfg,
        config,
        script,
        connection,
        fn=lambda revision, context: [],
        dont_mutate=True,
    )
    if connection.in_transaction():
        connection.rollback()
    return run.options
