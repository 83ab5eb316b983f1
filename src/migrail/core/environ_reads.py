"""The environment variables a run reads, so that an answer it records is served again only where
they still hold what they held.

A revision or ``env.py`` may read any variable (``os.environ["SEED_DEMO"]``, ``os.getenv``), and
what it does can depend on it: an answer recorded by a run and replayed by a later one with the
variable changed would be an answer to another question. While ``recording`` is active,
``os.environ`` is a mapping that notes each name asked for (present or not); a run that walks
the whole environment (``os.environ.copy()``, ``dict(os.environ)``) depends on all of it, which
``Reads.whole`` says. Values are never written down: only a salted digest of each, to compare.

Only what the project's code reads counts (``recording``'s ``counts``): migrail and its
libraries read the terminal's size and kind, the driver's settings and their own variables
meanwhile, and counting those made every warm run in a resized terminal, or in CI after a
laptop, a cold one.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType


class Reads(MutableMapping[str, str]):
    """``os.environ`` as seen through a recorder: every name read, with the value it held when
    first read (``seen``: a value the run itself set afterwards is not what it depended on)."""

    def __init__(
        self, inner: MutableMapping[str, str], counts: Callable[[], bool] | None = None
    ) -> None:
        self.inner = inner
        self.counts = counts  # whether a read now counts (``recording``); None: every one
        self.seen: dict[str, str | None] = {}
        self.whole = False  # the environment was walked: every variable counts
        # The project's modules an earlier run's answer stands on (a template's, by path and
        # digest: ``inherited_sources``), as the variables it read are counted in ``seen``.
        self.sources: dict[str, str] = {}
        # The files the project's code opened to read (a CSV a revision loads, a module it
        # runs by ``spec_from_file_location`` without importing it): ``opened_files``.
        self.opened: set[str] = set()

    def saw(self, key: str) -> None:
        if key not in self.seen and (self.counts is None or self.counts()):
            self.seen[key] = self.inner.get(key)

    def __getitem__(self, key: str) -> str:
        self.saw(key)
        return self.inner[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.saw(key)
        return key in self.inner

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.saw(key)
        return self.inner.get(key, default)

    def __setitem__(self, key: str, value: str) -> None:
        self.saw(key)
        self.inner[key] = value

    def __delitem__(self, key: str) -> None:
        self.saw(key)
        del self.inner[key]

    def __iter__(self) -> Iterator[str]:
        self._walked()
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def copy(self) -> dict[str, str]:
        self._walked()
        return dict(self.inner)

    def _walked(self) -> None:
        if self.counts is None or self.counts():
            self.whole = True


def current() -> Reads | None:
    """The recorder active now, if any."""
    return os.environ if isinstance(os.environ, Reads) else None


def unrecorded() -> MutableMapping[str, str]:
    """The environment itself, for migrail's own looks at it (a child's allow-list, a
    template's variables compared), which are no part of what the project's code read.
    Recorders may be nested (a whole run's, and a part's within it): none of them sees these."""
    environ: MutableMapping[str, str] = os.environ
    while isinstance(environ, Reads):
        environ = environ.inner
    return environ


def inherited(recorded: Iterable[str]) -> None:
    """Count the variables an earlier run's answer stands on (``recorded``: those of a template
    this run starts from) as read by this run, whatever reads count now: its answer stands on
    them too, and so does any answer it records (a receipt, a template made on top)."""
    names = list(recorded)
    environ, reads = unrecorded(), current()
    while reads is not None:  # every recorder: the run's as well as the part's within it
        for name in names:
            reads.seen.setdefault(name, environ.get(name))
        reads = reads.inner if isinstance(reads.inner, Reads) else None


def inherited_sources(recorded: object) -> None:
    """Count the modules an earlier run's answer stands on (a template's ``sources``: digests by
    path) as imported by this run: any answer it records stands on them too."""
    if not isinstance(recorded, dict):
        return
    reads = current()
    while reads is not None:
        for name, digest in recorded.items():
            reads.sources.setdefault(str(name), str(digest))
        reads = reads.inner if isinstance(reads.inner, Reads) else None


def inherited_source_digests() -> dict[str, str]:
    """What ``inherited_sources`` counted, in the run recording now."""
    reads = current()
    return dict(reads.sources) if reads is not None else {}


def opened_files() -> set[str]:
    """The files the project's code opened to read in the run recording now (``recording``)."""
    reads = current()
    return set(reads.opened) if reads is not None else set()


_WATCHING: list[bool] = []


def _watch_opens() -> None:
    """Note, in each recorder active, the files opened to read while its ``counts`` holds (an
    audit hook: it stays for the process, and does nothing outside a recording)."""
    if not _WATCHING:
        _WATCHING.append(True)
        sys.addaudithook(_opened)


def _opened(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not isinstance(os.environ, Reads):
        return
    try:  # a hook's exception would be the audited call's: none leaves it
        path, mode, flags = args
        if not isinstance(path, (str, bytes, os.PathLike)):
            return  # a file descriptor
        if isinstance(mode, str):
            if any(letter in mode for letter in "wax+"):
                return
        elif not isinstance(flags, int) or flags & os.O_ACCMODE != os.O_RDONLY:
            return
        name = os.fsdecode(os.fspath(path))
        # Bytecode, and the interpreter's and the libraries' files (the import system opens
        # hundreds), before any look at the stack: none of them is the project's.
        if name.endswith((".pyc", ".pyo")) or name.startswith(LIBRARIES):
            return
        if _by_migrail(sys._getframe(1)):
            return
        reads: Reads | None = os.environ
        while reads is not None:
            if reads.counts is None or reads.counts():
                reads.opened.add(os.path.abspath(name))  # noqa: PTH100 (no look at the disk here)
            reads = reads.inner if isinstance(reads.inner, Reads) else None
    except Exception:
        pass


_MIGRAIL = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # noqa: PTH100, PTH120
_STANDARD = sysconfig.get_paths()["stdlib"]
# Where the interpreter's and the installed libraries' files are, as string prefixes: what the
# project's code reads or imports from there is no input of its own (their versions are).
LIBRARIES = tuple(
    dict.fromkeys(
        os.path.join(folder, "")  # noqa: PTH118 (a prefix to compare strings with)
        for folder in (
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            _STANDARD,
            *(sysconfig.get_paths()[key] for key in ("purelib", "platlib")),
        )
    )
)


def _by_migrail(frame: FrameType | None) -> bool:
    """Whether the code that opens a file (the first frame outside the standard library, which
    ``open`` passes through: ``pathlib``, ``tomllib``, the import system) is migrail's own (its
    settings read while the project's ``env.py`` runs), not the project's nor a library's."""
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(("<frozen", _STANDARD)):
            return name.startswith(_MIGRAIL + os.sep)
        frame = frame.f_back
    return False


@contextmanager
def recording(counts: Callable[[], bool] | None = None) -> Iterator[Reads]:
    """``os.environ`` records its reads until the block ends (``os.getenv`` reads through it):
    those made while ``counts()`` holds (the project's code runs in the reading thread), or
    every one without it. Within another recording, a read counts for both where each one's
    ``counts`` holds (each reads through the one before)."""
    _watch_opens()
    original = os.environ
    reads = Reads(original, counts)
    os.environ = reads  # type: ignore[assignment]  # noqa: B003 (a view of it, not a new one)
    try:
        yield reads
    finally:
        os.environ = original  # noqa: B003


def fingerprint(values: Mapping[str, str | None], salt: str) -> dict[str, str | None]:
    """Each variable's value (``None``: not set) as a salted digest: compared, never shown."""
    found: dict[str, str | None] = {}
    for name, value in sorted(values.items()):
        if value is None:
            found[name] = None
        else:
            digest = hashlib.sha256(f"{salt}\0{name}\0{value}".encode())
            found[name] = digest.hexdigest()[:24]
    return found


def unchanged(recorded: Mapping[str, object], salt: str) -> bool:
    """Whether every variable ``recorded`` (a ``fingerprint``) holds now what it held then."""
    environ = unrecorded()  # migrail's own look: what the run stands on is said by ``inherited``
    now = {name: environ.get(name) for name in recorded}
    return fingerprint(now, salt) == dict(recorded)
