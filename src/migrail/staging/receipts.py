"""Receipts: what a warm run that found nothing new answered, so that the next one answers at once.

A run that starts from the template at head proves nothing new: it copies a database, compares
the models and says again what the last such run said. Yet it pays for Python's imports
(SQLAlchemy and Alembic), for loading every revision file and for the copy, about a second
whatever the history's length. Its answer depends only on its inputs, so the run records it, in
the comment of the head template it started from, under a key that hashes all of them:

- every file under ``migrations/`` (revisions, ``env.py``, seeds, SQL files, snapshots, the sum);
- the model files (as ``schema-sync`` reads them), the configuration as loaded, and the files
  Alembic's settings come from (``alembic.ini``, ``pyproject.toml``);
- what the step round trip covers (the revisions the base branch does not have);
- the options, ``MIGRAIL_*`` variables, whether this is CI, and the software: migrail's own
  files, Alembic's, SQLAlchemy's and psycopg's versions, Python's;
- every other environment variable the run read (``core.environ_reads``), by a digest of its
  value, recorded beside the answer and compared before it is served. A run that walked the
  whole environment records no answer.

The next run with the same inputs reads the files as bytes, asks the warm cluster for a template
holding that key, and prints the answer it records, without importing SQLAlchemy or starting
anything. A change to any input is a new key, and a full run. The receipt lives and dies with
its template: ``migrail cleanup``, the cache's bound, or a run that copies the template again
(and describes it anew) removes it. Only answers that passed are recorded: a failing run is
always run in full, so that its details are always shown. ``generate`` records its own beside it,
on the same inputs (``common_inputs``; see ``generate_receipt``), and so does a run whose model
check found the models match the head: generate's answer, where no hook of env.py's sees the
new revision's name.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlalchemy.engine import URL

    from migrail.core.config import Config
    from migrail.staging.run import Options
    from migrail.staging.summary import Verdict

RECEIPT_FORMAT = b"migrail receipt 2"
# The libraries whose behaviour shapes a proof, besides migrail itself.
_LIBRARIES = ("alembic", "sqlalchemy", "psycopg")


@dataclass(frozen=True)
class Answer:
    """A recorded answer: the lines the run printed after its proof, and when it ran."""

    lines: list[str]
    head: str  # the head revision, as messages name it
    proved: float  # unix time
    facts: Mapping[str, object] = field(default_factory=dict)  # what else it recorded


def receipt_key(
    config: Config, options: Options, allow_version_mismatch: bool, common: str | None = None
) -> str:
    """The key of every input a run's answer depends on (see the module's docstring);
    ``common``: ``common_inputs(config)``, where the run has it already."""
    from migrail.staging.run import in_ci

    return derived_key(
        common if common is not None else common_inputs(config),
        RECEIPT_FORMAT,
        repr(options),
        f"allow_version_mismatch={allow_version_mismatch} ci={in_ci()}",
        _step_scope(config, options),
    )


def derived_key(common: str, kind: bytes, *parts: str) -> str:
    """The key of what a command's answer over the history depends on: ``common``, the digest
    ``common_inputs`` gives (hashed once by a run that records or looks up more than one kind
    of answer), and ``parts``, what else the command's does (its options). ``kind`` keeps one
    command's keys from another's."""
    digest = hashlib.sha256(kind + b"\0" + common.encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:32]


def common_inputs(config: Config) -> str:
    """The digest of what every answer over the history depends on: the configuration,
    ``MIGRAIL_*`` variables, the software, the model files, the Alembic settings beside the
    migrations and every file under them."""
    from migrail.history.snapshot import model_files, models_digest
    from migrail.history.tree import DiskTree
    from migrail.staging.templates import files_content

    digest = hashlib.sha256(b"migrail inputs 1")
    variables = sorted((k, v) for k, v in os.environ.items() if k.startswith("MIGRAIL_"))
    for part in (
        repr(config),
        repr(variables),
        _software(),
        models_digest(model_files(config, DiskTree())),
    ):
        digest.update(part.encode() + b"\0")
    digest.update(_settings_files(config))
    digest.update(files_content(config.migrations_dir))
    return digest.hexdigest()


_SETTINGS = frozenset({"pyproject.toml", "alembic.ini"})


def _settings_files(config: Config) -> bytes:
    """The files outside ``migrations/`` that Alembic's configuration comes from: the
    ``alembic.ini`` files migrail looks for (``file_template``, ``revision_environment``...)
    and ``pyproject.toml`` (``[tool.alembic]``), by path and content. One that cannot be read
    raises ``OSError``: no key, and the full run says what is wrong."""
    paths = dict.fromkeys(
        (
            config.root / "pyproject.toml",
            config.root / "alembic.ini",
            config.migrations_dir.parent / "alembic.ini",
        )
    )
    found = []
    for path in paths:
        content = path.read_bytes() if path.is_file() else b"(none)"
        found.append(str(path).encode() + b"\0" + content)
    return b"\0".join(found)


def recorded_answer(config: Config, key: str, field: str = "receipt") -> Answer | None:
    """The answer recorded under ``key`` (in the description's ``field``: each command has its
    own) on the warm cluster a full run would use, or ``None``: no warm cluster running, no
    template with that receipt, or the server cannot be asked.

    The full run chooses its server by the extensions the history creates, which takes a scan
    of every revision file; the receipt records them (the key covers the files, so they are
    the same now), and a receipt found on a running warm cluster counts only if that cluster is
    the one the full run would choose with them."""
    from migrail.core.environ_reads import unchanged
    from migrail.core.errors import FatalError
    from migrail.postgres.ephemeral import keep_warm, requested_source
    from migrail.postgres.sources import choose_source
    from migrail.postgres.warm import running_warm_clusters, warm_directory
    from migrail.staging.templates import find_receipt, project_key

    if not keep_warm():
        return None
    project = project_key(config.migrations_dir)
    for directory in running_warm_clusters():
        found = find_receipt(directory, project, key, field)
        if found is None:
            continue
        try:
            extensions = {str(k): str(v) for k, v in dict(found["extensions"]).items()}
            choice = choose_source(requested_source(), extensions)
            if choice.bindir is None or warm_directory(choice.bindir) != directory:
                continue
            if not unchanged(dict(found["environ"]), key):  # a variable it read changed
                continue
            if not sources_unchanged(found.get("sources") or {}):  # a module it imported
                continue
            lines = [str(line) for line in found["lines"]]
            facts = dict(found.get("facts") or {})
            return Answer(lines, str(found["head"]), float(found["proved"]), facts)
        except (KeyError, TypeError, ValueError, FatalError):  # the full run says what is wrong
            continue
    return None


def record(
    admin_url: URL,
    template: str,
    key: str,
    head: str,
    lines: list[str],
    extensions: dict[str, str],
    variables: Mapping[str, str | None],
    field: str = "receipt",
    facts: Mapping[str, object] | None = None,
    *,
    root: Path | None = None,
) -> None:
    """Record the answer ``lines`` under ``key`` in ``template``'s comment (its ``field``), with
    the extensions the history creates (what chose the server it ran on), the environment
    ``variables`` the run read (with the values they held when first read), as digests, and
    ``facts``: what else the command needs to say the answer again; and, given the project's
    ``root``, the modules the run imported that are no library's (``imported_sources``)."""
    from migrail.core.environ_reads import fingerprint
    from migrail.staging.templates import describe_receipt

    receipt = {
        "key": key,
        "head": head,
        "proved": time.time(),
        "lines": lines,
        "extensions": extensions,
        "environ": fingerprint(variables, key),
    }
    if facts:
        receipt["facts"] = dict(facts)
    if root is not None:
        receipt["sources"] = imported_sources()
    describe_receipt(admin_url, template, receipt, field)


def imported_sources() -> dict[str, str]:
    """The digest of each Python file this process has imported that is not the interpreter's
    or an installed library's, by path: the key covers the models' own package
    (``snapshot.model_files``), but the models may import a module beside it (a ``columns.py``
    at the root), or from outside the project (a package of the repository installed with
    ``pip install -e``, a folder on ``PYTHONPATH``), whose change changes them too. Files of an
    environment (``.venv``, site-packages) are the libraries', which their versions cover.
    Those the template a run started from stood on count too (``inherited_sources``)."""
    from migrail.core.environ_reads import LIBRARIES, inherited_source_digests, opened_files
    from migrail.history.revision_files import is_leftover

    prefixes = {Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    prefixes |= {Path(folder).resolve() for folder in ("/proc", "/sys", "/dev")}
    names = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    # And the files the project's code read (``opened_files``), bytecode aside, and the
    # configuration Alembic reads meanwhile, which the keys cover (``_settings_files``).
    names += sorted(name for name in opened_files() if Path(name).name not in _SETTINGS)
    found = {}
    for name in names:
        if not isinstance(name, str) or name.startswith(LIBRARIES):  # no look at the disk
            continue
        path = Path(name).resolve()
        if "site-packages" in path.parts or "dist-packages" in path.parts:
            continue
        if any(path.is_relative_to(prefix) for prefix in prefixes):
            continue
        if any(is_leftover(part) for part in path.parts) or not path.is_file():
            continue
        try:
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue

    return {**inherited_source_digests(), **found}


def sources_unchanged(sources: Mapping[str, object]) -> bool:
    """Whether every module a receipt's run imported (``imported_sources``) is as it was."""
    for name, digest in sources.items():
        try:
            if hashlib.sha256(Path(name).read_bytes()).hexdigest() != digest:
                return False
        except OSError:
            return False
    return True


def say(answer: Answer, done: str) -> None:
    """Print a recorded answer, after a line saying what it stands on (``done``: what the run
    that recorded it did). Written as the commit hooks write, without rich: its import alone
    would be a tenth of a run that answers from a receipt."""
    import sys

    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(answer.proved))
    sys.stderr.write(
        f"template cache: nothing changed since a run {done} at {answer.head} on {when}: "
        "its answer stands\n" + "".join(f"{line}\n" for line in answer.lines)
    )


def plain_lines(verdicts: Iterable[Verdict]) -> list[str]:
    """The verdict's lines as the run printed them, without colour: what a receipt replays."""
    prefix = {"info": "", "success": "[✓] ", "failure": "error: "}
    lines = []
    for verdict in verdicts:
        lines.append(f"{prefix[verdict.kind]}{verdict.message}")
        lines += [f"  {item}" for item in verdict.items]
    return lines


def _step_scope(config: Config, options: Options) -> str:
    """What the step round trip covers, as far as it is not in the files: the base branch and
    the revision files it has (by default, the round trip steps those it has not)."""
    if options.step != "branch":
        return options.step
    from migrail.history.released import released_names

    base, names = released_names(config)
    return f"base={base} released={sorted(names) if names is not None else None}"


def _software() -> str:
    """Python's version, and each library's and migrail's own files by name, size and time of
    change: an upgrade, or an edit to an editable install, is a new key. (Asking for versions
    through ``importlib.metadata`` would cost more than the rest of a run that uses a receipt.)"""
    from importlib.util import find_spec

    package = Path(__file__).resolve().parents[1]
    files = sorted(package.rglob("*.py"))
    for name in _LIBRARIES:
        spec = find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    stats = []
    for path in files:
        info = path.stat()
        stats.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
    return f"python={sys.version} {json.dumps(stats)}"
