"""The environment variables a run reads, so that an answer it records is served again only where
they still hold what they held.

A revision or ``env.py`` may read any variable (``os.environ["SEED_DEMO"]``, ``os.getenv``), and
what it does can depend on it: an answer recorded by a run and replayed by a later one with the
variable changed would be an answer to another question. While ``recording`` is active,
``os.environ`` is a mapping that notes each name asked for (present or not); a run that walks
the whole environment (``os.environ.copy()``, ``dict(os.environ)``) depends on all of it, which
``Reads.whole`` says. Values are never written down: only a salted digest of each, to compare.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager


class Reads(MutableMapping[str, str]):
    """``os.environ`` as seen through a recorder: every name read, with the value it held when
    first read (``seen``: a value the run itself set afterwards is not what it depended on)."""

    def __init__(self, inner: MutableMapping[str, str]) -> None:
        self.inner = inner
        self.seen: dict[str, str | None] = {}
        self.whole = False  # the environment was walked: every variable counts

    def saw(self, key: str) -> None:
        if key not in self.seen:
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
        self.whole = True
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def copy(self) -> dict[str, str]:
        self.whole = True
        return dict(self.inner)


def current() -> Reads | None:
    """The recorder active now, if any."""
    return os.environ if isinstance(os.environ, Reads) else None


def unrecorded() -> MutableMapping[str, str]:
    """The environment itself, for migrail's own walks of it (a child's allow-list): those
    name what they pass with ``noted``, rather than counting as reading all of it. Recorders
    may be nested (a whole run's, and a part's within it): none of them sees the walk."""
    environ: MutableMapping[str, str] = os.environ
    while isinstance(environ, Reads):
        environ = environ.inner
    return environ


def noted(names: Iterable[str]) -> None:
    """Count ``names`` as read, where a recorder is active."""
    reads = current()
    if reads is not None:
        for name in names:
            reads.saw(name)


@contextmanager
def recording() -> Iterator[Reads]:
    """``os.environ`` records its reads until the block ends (``os.getenv`` reads through it).
    Within another recording, a read is recorded by both (each reads through the one before)."""
    original = os.environ
    reads = Reads(original)
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
    now = {name: os.environ.get(name) for name in recorded}
    return fingerprint(now, salt) == dict(recorded)
