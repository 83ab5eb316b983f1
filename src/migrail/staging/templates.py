"""The template cache: the staging database as it was after revision k, kept on the server.

A run clones the longest prefix of the history an earlier run already proved
(``CREATE DATABASE ... TEMPLATE``) and applies only the rest, so a run after adding one revision
costs one revision, not the whole history. Each template is a database named
``migrail_tpl_<project>_<key>``: the key hashes everything that shaped it, in order: the content
of revisions 1..k, ``env.py`` and the other files beside the revisions, in ``versions/`` too
(SQL they read, helpers they import), whether the tables got sample rows and what the seed
files say, and whether each revision was round-tripped on its own (a prefix the step round trip
left alone has the key a plain run gives it, so a branch's run finds its base branch's
templates). Editing revision j changes the key of every prefix from j on, so those templates
are never served again; they are dropped on the next run. Templates are copied during a run
under throwaway names (swept like any of a killed run) and take their real names only when the
run proved the history, so a template always holds a proven history. The cache lives on servers
that outlive a run (``MIGRAIL_ADMIN_URL``'s, the warm cluster), which other projects may share:
a project is its migrations folder (``project_key``), and a run drops and bounds only its own
project's templates, at most ``MAX_TEMPLATES`` of them, the least recently used going first.
``migrail cleanup`` drops the templates of the project it is run in (``--all-projects``: every
project's on the server).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail.history.revision_files import (
    NOT_SUPPORT,
    Folders,
    is_document,
    is_leftover,
    resolved,
)
from migrail.postgres.ephemeral import admin_connection, drop_database

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import psycopg
    from sqlalchemy.engine import URL, Connection

    from migrail.core.config import Config
    from migrail.engine.executor import Executor
    from migrail.staging.earlier import Earlier

    Admin = psycopg.Connection[tuple[object, ...]]

TEMPLATE_PREFIX = "migrail_tpl_"
MAX_TEMPLATES = 8
# What a template holds, and how sample rows are made: a change to either is a new format.
# Version 2: a template records what was proven of its prefix (``earlier``); 3: with how long
# each revision's transaction held its locks.
CACHE_FORMAT = b"migrail template 3"


@dataclass(frozen=True)
class Template:
    name: str
    project: str
    revision: str
    used: float  # when a run last cloned or made it (unix time)
    proven: object = None  # what was proven of its prefix (``earlier.read`` reads it)
    # The environment variables the run that made it read, as digests (``core.environ_reads``),
    # and whether they hold the same values now: a template made under others is not served.
    environ: object = None
    environ_holds: bool = True
    # The digests of the project's modules its run imported that may shape what a revision
    # does (``sources_of``): a template made before one of them changed is not served.
    sources: object = None

    @property
    def serves(self) -> bool:
        """Whether it may be served now: the variables and modules its run read are as then."""
        from migrail.staging.receipts import sources_unchanged

        if not self.environ_holds:
            return False
        # One recorded before its modules were (no "sources"): what it stands on is unknown.
        return isinstance(self.sources, dict) and sources_unchanged(self.sources)


@dataclass
class TemplateCache:
    """The templates of one project's history on one server."""

    admin_url: URL
    project: str
    revisions: list[str]  # ids, oldest first: position k is revisions[k - 1]
    keys: list[str]  # keys[k - 1]: the key of the prefix 1..k
    pending: dict[str, int] = field(default_factory=dict)  # throwaway copy: position
    present: set[int] = field(default_factory=set)  # positions with a template, as last read
    # What was proven of the prefix of the longest template found (``earlier``), if recorded.
    earlier: Earlier | None = None
    # The run read the whole environment (``keep``): every variable would count, none vouches.
    walked: bool = False
    # Where the modules that cannot change a template are (``sources_of``).
    leave_out: tuple[Path, ...] = ()

    def name(self, position: int) -> str:
        return f"{TEMPLATE_PREFIX}{self.project}_{self.keys[position - 1]}"

    def longest(self) -> int:
        """The longest prefix with a template (0: none), after dropping this project's templates
        that no prefix of the history has any more: their revisions changed."""
        from migrail.core.environ_reads import inherited, inherited_sources
        from migrail.staging.earlier import read

        wanted = {self.name(position) for position in range(1, len(self.keys) + 1)}
        present = {}
        with admin_connection(self.admin_url) as admin:
            for template in _templates(admin):
                if template.name in wanted:
                    if template.serves:
                        present[template.name] = template
                elif template.project == self.project:
                    _drop_quietly(admin, template.name)
            self.present = {k for k in range(1, len(self.keys) + 1) if self.name(k) in present}
            found = max(self.present, default=0)
            self.earlier = None
            if found:
                proven = present[self.name(found)].proven
                earlier = read(proven)
                if earlier is not None and earlier.revisions == self.revisions[:found]:
                    self.earlier = earlier
                # Recently used (and its receipt gone: this run records the answer anew).
                environ = present[self.name(found)].environ
                if isinstance(environ, dict):  # what its answer stands on, this run's does too
                    inherited(environ)
                inherited_sources(present[self.name(found)].sources)
                sources = present[self.name(found)].sources
                _describe(
                    admin, self.name(found), self.revisions[found - 1], proven, environ, sources
                )
        return found

    def copy_points(self, since: int, stepped: Collection[str] = ()) -> list[str]:
        """The revisions after which a run starting at position ``since`` copies its database:
        the head, and the one before it (so that editing the newest revision, as one does while
        writing it, still finds a template), where there is none yet. With revisions to step
        (``stepped``), a copy is made only before the first of them (the last one on the base
        branch, the next branch's start) and at the head: the database is between two round
        trips only there."""
        count = len(self.keys)
        plain = next((k for k in range(count) if self.revisions[k] in stepped), count)
        wanted = sorted({count - 1, count} if plain == count else {plain, count})
        return [
            self.revisions[k - 1] for k in wanted if k > since and k > 0 and k not in self.present
        ]

    def copy(self, database: str, position: int) -> None:
        """Copy ``database`` (no one may be connected to it) as the prefix up to ``position``;
        it becomes a template only by ``keep``."""
        from psycopg import sql

        from migrail.core.signals import shielded
        from migrail.postgres.left_roles import makes_roles

        name = f"{database}_{position}"  # the run's token: its lock covers the copy too
        with admin_connection(self.admin_url) as admin, shielded():  # as Server._create
            if makes_roles(admin, database):  # a template would keep them on the server
                return
            self.pending[name] = position  # first: interrupted mid-copy, it is still dropped
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(database)
                )
            )

    def keep(self, proven: Callable[[int], object] | None = None) -> list[int]:
        """Give the copies their template names (the history they hold is proven), each with
        what ``proven`` says was proven of its prefix (``earlier.record``), then drop the least
        recently used templates beyond the bound; the positions kept."""
        import psycopg
        from psycopg import sql

        from migrail.core.environ_reads import current, fingerprint
        from migrail.core.signals import shielded

        reads = current()
        if reads is not None and reads.whole:  # it walked the environment: all of it counts
            self.walked = True
            self.discard()
            return []
        kept = []
        sources = sources_of(self.leave_out)
        with shielded(), admin_connection(self.admin_url) as admin:
            for name, position in sorted(self.pending.items(), key=lambda item: item[1]):
                try:
                    # Described first: a template without its "used" time would be the first
                    # that a concurrent run's bound drops.
                    facts = proven(position) if proven is not None else None
                    environ = (
                        None if reads is None else fingerprint(reads.seen, self.name(position))
                    )
                    revision = self.revisions[position - 1]
                    _describe(admin, name, revision, facts, environ, sources)
                    # Copied, never connected to: no one changes what its name vouches for.
                    admin.execute(
                        sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
                            sql.Identifier(name)
                        )
                    )
                    admin.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(name), sql.Identifier(self.name(position))
                        )
                    )
                except psycopg.errors.DuplicateDatabase:  # another run made it meanwhile
                    _drop_quietly(admin, name)
                    continue
                except psycopg.Error:  # gone: dropped by hand, say
                    continue
                kept.append(position)
            self.pending.clear()
            ours = [t for t in _templates(admin) if t.project == self.project]
            newest_first = sorted(ours, key=lambda t: t.used, reverse=True)
            for template in newest_first[MAX_TEMPLATES:]:
                _drop_quietly(admin, template.name)
        return kept

    def discard(self) -> None:
        """Drop the copies: the run did not prove what they hold (or was interrupted)."""
        from migrail.core.signals import shielded

        with shielded(), admin_connection(self.admin_url) as admin:
            for name in self.pending:
                _drop_quietly(admin, name)
        self.pending.clear()


class RunDatabase:
    """The run's database and its one connection, which is closed while a copy is made (no one
    may be connected to a database being copied) and then opened again."""

    def __init__(self, url: URL, cache: TemplateCache | None) -> None:
        from migrail.postgres.database import create_engine

        self.url = url
        self.cache = cache
        self.engine = create_engine(url)
        self.connection: Connection = self._open()

    def copy(self, revision: str) -> Connection:
        """Copy the database as the template of the prefix up to ``revision``; the connection
        to use from now on."""
        assert self.cache is not None and self.url.database is not None
        self.connection.close()
        self.cache.copy(self.url.database, self.cache.revisions.index(revision) + 1)
        self.connection = self._open()
        return self.connection

    def move(self, url: URL) -> None:
        """Go on in the database at ``url``: the step round trip rebuilt the run's state there
        (the one left is closed, to be dropped)."""
        from migrail.postgres.database import create_engine

        self.close()
        self.url = url
        self.engine = create_engine(url)
        self.connection = self._open()

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()

    def _open(self) -> Connection:
        from sqlalchemy.exc import DBAPIError

        from migrail.postgres.database import connection_error

        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise connection_error(self.url, exc.orig or exc) from None


def template_cache(
    admin_url: URL, executor: Executor, settings: bytes, stepped: Collection[str] = ()
) -> TemplateCache:
    """The cache for ``executor``'s history (a line, or with branches: its revisions in the
    order Alembic applies them from base, ``Executor.revisions``); ``settings`` are what else
    shapes a template (sample rows or not, seed files); ``stepped``: the revisions the run
    undoes and redoes on their own."""
    config = executor.config
    project = project_key(config.migrations_dir)
    scripts = executor.revisions()
    digest = hashlib.sha256(CACHE_FORMAT)
    digest.update(hashlib.sha256(settings).digest())
    digest.update(_support_files(config.migrations_dir, {Path(s.path) for s in scripts}))
    revisions, keys = [], []
    folders: Folders = {}
    read = {resolved(Path(path), folders): content for path, content in executor.sources.items()}
    for revision in scripts:
        path = Path(revision.path)
        content = read.get(path)
        digest.update(hashlib.sha256(_read(path) if content is None else content).digest())
        if revision.revision in stepped:
            digest.update(b"stepped")
        revisions.append(revision.revision)
        keys.append(digest.copy().hexdigest()[:24])
    return TemplateCache(admin_url, project, revisions, keys, leave_out=_leave_out(executor))


def _leave_out(executor: Executor) -> tuple[Path, ...]:
    """Where the modules a template does not depend on are: the migrations folder (its files
    are in the keys), migrail itself, and the models' own top-level package (each run compares
    the models anew; a template standing on them would be dropped at every model change, which
    is what one does while writing a revision), unless a revision or a file beside the
    revisions imports from it (``_history_imports``). Only that package: in a src layout, the
    other packages under ``src/`` are the project's modules like any other."""
    import migrail

    config = executor.config
    # These two first: ``sources_of`` leaves out only them for the files the run read.
    out = [config.migrations_dir.resolve(), Path(migrail.__file__).resolve().parent]
    if not _history_imports(executor, config.metadata, config.flask_app):
        out += [path.resolve() for path in _model_packages(config)]
    return tuple(out)


def _model_packages(config: Config) -> list[Path]:
    """The top-level packages (or modules) of the models and of the Flask app, at the root of
    the project or under ``src/``."""
    specs = [spec for spec in (config.metadata, config.flask_app) if spec]
    tops = dict.fromkeys(spec.partition(":")[0].partition(".")[0] for spec in specs)
    names = [name for top in tops for name in (top, f"{top}.py")]
    bases = (config.root, config.root / "src")
    return [base / name for base in bases for name in names if (base / name).exists()]


def _history_imports(executor: Executor, *specs: str | None) -> bool:
    """Whether the history may run code of the top-level package of a ``module:attribute`` in
    ``specs`` (the models', the Flask app's) other than the models: a revision importing from
    it (by an import statement, ``importlib.import_module`` or ``__import__``), a helper beside
    the revisions importing from it, or ``env.py`` importing from it anything but the models'
    module and the packages above it (which it imports for the metadata)."""
    import re

    from migrail.history.revision_files import is_support_file

    wanted = [spec.partition(":")[0] for spec in specs if spec]
    tops = {module.partition(".")[0] for module in wanted}
    if not tops:
        return False
    names = "|".join(re.escape(top) for top in sorted(tops))
    module = rf"((?:{names})(?:\.[\w.]*)?)\b"
    patterns = [
        re.compile(rf"^\s*(?:from|import)\s+{module}".encode(), re.MULTILINE),
        re.compile(rf"(?:import_module|__import__)\s*\(\s*[fFrR]?[\"']{module}".encode()),
    ]
    if any(p.search(content) for p in patterns for content in executor.sources.values()):
        return True
    # The models' module and the packages above it (``from app import models``) are env.py's.
    allowed = {".".join(m.split(".")[:n]) for m in wanted for n in range(1, m.count(".") + 2)}
    config = executor.config
    migrations, versions = config.migrations_dir, config.versions_dir
    for path in sorted(migrations.rglob("*.py")):
        if not is_support_file(path.resolve(), migrations, versions):
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue
        for pattern in patterns:
            for match in pattern.finditer(content):
                if path.name != "env.py" or match[1].decode().rstrip(".") not in allowed:
                    return True
        if path.name == "env.py" and _imports_a_module_from(content, allowed, config.root):
            return True
    return False


def _imports_a_module_from(content: bytes, allowed: set[str], root: Path) -> bool:
    """Whether ``content`` imports, by ``from package import name``, a module of the project
    from one of the ``allowed`` packages that is not itself allowed (``from app import
    settings`` where only ``app.models`` is)."""
    import re

    pattern = re.compile(rb"^\s*from\s+([\w.]+)\s+import\s+\(?([\w\s,]+)", re.MULTILINE)
    for match in pattern.finditer(content):
        package = match[1].decode()
        if package not in allowed:
            continue
        for name in match[2].decode().replace("\n", " ").split(","):
            module = f"{package}.{name.split()[0]}" if name.split() else package
            if module in allowed:
                continue
            relative = Path(*module.split("."))
            for base in (root, root / "src"):
                if (base / relative).is_dir() or (base / relative).with_suffix(".py").is_file():
                    return True
    return False


def sources_of(leave_out: tuple[Path, ...]) -> dict[str, str]:
    """The digests of the project's modules this run imported (``receipts.imported_sources``)
    outside ``leave_out``: a revision that imports a constant from ``app/settings.py`` does
    something else when that file changes, though no file of the history did. A file the
    project's code opened to read (``opened_files``: a JSON file beside the models) counts
    wherever it is but in the migrations folder and migrail (the first two of ``leave_out``):
    only a module of the models' package is left out (each run imports the models anew)."""
    from migrail.core.environ_reads import opened_files
    from migrail.staging.receipts import imported_sources

    opened = {str(Path(name).resolve()) for name in opened_files()}
    found = {}
    for name, digest in imported_sources().items():
        folders = leave_out[:2] if name in opened and not name.endswith(".py") else leave_out
        if not any(Path(name).is_relative_to(folder) for folder in folders):
            found[name] = digest
    return found


def project_key(migrations: Path) -> str:
    """The project a template belongs to, in its name: its migrations folder, where it is (two
    checkouts of one repository are two projects, each dropping only its own stale templates)."""
    return hashlib.sha256(str(migrations.resolve()).encode()).hexdigest()[:8]


def _support_files(migrations: Path, revisions: set[Path]) -> bytes:
    """``env.py`` and whatever else lives beside the revisions, in versions/ too (SQL files
    they read, helpers they import): a change to any of them is a change to every template.
    The revision files are left out: each is hashed into the keys of its own prefixes; so are
    documents (a README), which nothing runs."""
    folders: Folders = {}
    leave_out = frozenset(resolved(path, folders) for path in revisions)
    return files_content(migrations, skip=NOT_SUPPORT, leave_out=leave_out, documents=False)


def files_content(
    root: Path,
    skip: frozenset[str] = frozenset(),
    leave_out: frozenset[Path] = frozenset(),
    *,
    documents: bool = True,
) -> bytes:
    """The names (relative to ``root``) and content of the files under it, as one value for a
    template's key. Left out: what ``skip`` names at the top of ``root``, the files in
    ``leave_out`` (resolved paths), leftovers (``is_leftover``) wherever they are, and with
    ``documents`` false, documents (``is_document``)."""
    found = []
    resolved_folders: Folders = {}
    for directory, folders, names in os.walk(root):
        here = Path(directory)
        top = here == root
        folders[:] = [f for f in folders if not is_leftover(f) and not (top and f in skip)]
        for name in names:
            path = here / name
            if is_leftover(name) or (top and name in skip) or not path.is_file():
                continue
            if not documents and is_document(name):
                continue
            if leave_out and resolved(path, resolved_folders) in leave_out:
                continue
            found.append((path.relative_to(root), _read(path)))
    found.sort(key=lambda file: file[0].parts)  # as the paths sort: folder by folder
    return b"\0".join(str(relative).encode() + b"\0" + content for relative, content in found)


def clear_templates(admin_url: URL, project: str | None) -> list[str]:
    """Drop the templates of ``project`` (a ``project_key``; ``None``: of every project on the
    server); the names dropped."""
    from migrail.postgres.left_roles import drop_marked_roles

    dropped = []
    with admin_connection(admin_url) as admin:
        for template in _templates(admin):
            if project not in (None, template.project):
                continue
            if _drop_quietly(admin, template.name):
                dropped.append(template.name)
        drop_marked_roles(admin)  # the roles kept for them, unless another template needs one
    return dropped


def usable(admin_url: URL, project: str) -> dict[str, Template]:
    """``project``'s templates on the server that may be served now (made under the same values
    of the environment variables, and of the modules, their run read), by name."""
    with admin_connection(admin_url) as admin:
        return {t.name: t for t in _templates(admin) if t.project == project and t.serves}


def _templates(admin: Admin) -> list[Template]:
    from migrail.core.environ_reads import unchanged

    rows = admin.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
        " WHERE starts_with(datname, %s)",
        (TEMPLATE_PREFIX,),
    ).fetchall()
    found = []
    for name, comment in rows:
        project = str(name).removeprefix(TEMPLATE_PREFIX).split("_")[0]
        about = _parsed(comment)
        try:
            revision, used = str(about.get("revision", "")), float(about.get("used", 0.0))
        except (TypeError, ValueError):
            revision, used = "", 0.0
        environ = about.get("environ")
        holds = not isinstance(environ, dict) or unchanged(environ, str(name))
        found.append(
            Template(
                str(name),
                project,
                revision,
                used,
                about.get("proven"),
                environ,
                holds,
                about.get("sources"),
            )
        )
    return found


def _parsed(comment: object) -> dict[str, Any]:
    """A template's description (a JSON object in its comment); empty if it has none."""
    try:
        about = json.loads(str(comment or "{}"))
    except ValueError:
        return {}
    return about if isinstance(about, dict) else {}


def _describe(
    admin: Admin,
    name: str,
    revision: str,
    proven: object = None,
    environ: object = None,
    sources: object = None,
) -> None:
    """Record, in the template's comment, what it holds, what was proven of it (``earlier``),
    the environment variables its run read (``environ``) and that it was just used."""
    import psycopg
    from psycopg import sql

    about: dict[str, object] = {"revision": revision, "used": time.time()}
    if proven is not None:
        about["proven"] = proven
    if environ is not None:
        about["environ"] = environ
    if sources is not None:
        about["sources"] = sources
    with contextlib.suppress(psycopg.Error):  # one another run dropped meanwhile needs none
        admin.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(json.dumps(about))
            )
        )


def describe_receipt(
    admin_url: URL, name: str, receipt: dict[str, object], field: str = "receipt"
) -> None:
    """Add ``receipt`` (see ``receipts``) to the description of template ``name``, as its
    ``field`` (one a command: a template at head may answer for more than one)."""
    import psycopg

    with contextlib.suppress(psycopg.Error), admin_connection(admin_url) as admin:
        _rewrite_comment(admin, name, **{field: receipt})


def find_receipt(
    socket_dir: Path, project: str, key: str, field: str = "receipt"
) -> dict[str, Any] | None:
    """The receipt recorded under ``key`` (as the description's ``field``) on a template of
    ``project`` on the warm cluster whose socket is in ``socket_dir``, now marked as used; or
    ``None`` (none, or the server cannot be asked: the full run then decides). Asked without
    a driver (``postgres.wire``): this is read before psycopg or SQLAlchemy is imported, by a
    run that may need neither."""
    from migrail.postgres.wire import WireError, query_rows

    if not (project.isalnum() and key.isalnum()):
        return None
    try:
        # Only the template whose description names the key is sent: each description also
        # holds what was proven of its prefix (``earlier``), which grows with the history.
        rows = query_rows(
            socket_dir,
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            f" WHERE starts_with(datname, '{TEMPLATE_PREFIX}{project}_')"
            f" AND strpos(shobj_description(oid, 'pg_database'), '{key}') > 0",
        )
        for name, comment in rows:
            about = _parsed(comment)
            receipt = about.get(field)
            ours = isinstance(receipt, dict) and receipt.get("key") == key
            if ours and name and name.isidentifier():
                about["used"] = time.time()
                text = json.dumps(about).replace("'", "''")  # standard_conforming_strings
                query_rows(socket_dir, f"COMMENT ON DATABASE \"{name}\" IS '{text}'")
                return receipt
    except WireError:
        return None
    return None


def _rewrite_comment(admin: Admin, name: str, **changes: object) -> None:
    """Set the template's ``used`` time to now, and ``changes``, keeping the rest of its
    description."""
    from psycopg import sql

    row = admin.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    about = _parsed(row[0] if row else None)
    about.update(changes, used=time.time())
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(json.dumps(about))
        )
    )


def _drop_quietly(admin: Admin, name: str) -> bool:
    """Drop a database; ``False`` when it cannot be (another run is cloning it just now)."""
    import psycopg

    try:
        drop_database(admin, name)
    except psycopg.Error:
        return False
    return True


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
