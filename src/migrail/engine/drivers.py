"""Where each PostgreSQL driver opens a connection, watched: so that ``usercode`` can refuse a
new connection while the project's code runs, however the code reached the driver.

A revision may call ``psycopg.connect``, import ``connect`` from it before it runs, build its own
SQLAlchemy engine, or use a pool: all of them end in one function of the driver, which each
driver looks up at the moment it connects. That function is the one replaced here, once for the
process: in a driver already imported at once, and in one imported later as soon as its module
has run, before anything can use it. A driver is not imported to be watched: importing psycopg
costs about a tenth of a second, and a command that never connects (``lint``, the hooks) would
pay it every run.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec
    from types import ModuleType

# (module, attribute, what the user called): the function every connection of the driver goes
# through. psycopg 3: ``Connection.connect``, ``AsyncConnection.connect`` and subclasses (an
# SQLAlchemy engine's, migrail's own) all make it through ``generators.connect``.
_SYNC = (
    ("psycopg.generators", "connect", "psycopg.connect"),
    ("psycopg2", "_connect", "psycopg2.connect"),
)
_ASYNC = (("asyncpg.connect_utils", "_connect", "asyncpg.connect"),)

Watch = Callable[["ModuleType"], None]


class _Installed:
    done = False


def watch_connects(check: Callable[[str], None]) -> None:
    """Have ``check(call)`` run before every new connection of every installed driver (``call``:
    the driver's connect as people write it); it refuses one by raising."""
    if _Installed.done:
        return
    _Installed.done = True
    later: dict[str, Watch] = {}
    for drivers, wrap in ((_SYNC, _checked), (_ASYNC, _checked_async)):
        for module_name, attribute, call in drivers:
            watch = functools.partial(_replace, attribute, wrap, call, check)
            module = sys.modules.get(module_name)
            if module is not None:
                watch(module)
            else:
                later[module_name] = watch
    sys.meta_path.insert(0, _WatchOnImport(later))


def _replace(
    attribute: str,
    wrap: Callable[[Callable[..., Any], str, Callable[[str], None]], Any],
    call: str,
    check: Callable[[str], None],
    module: ModuleType,
) -> None:
    setattr(module, attribute, wrap(getattr(module, attribute), call, check))


class _WatchOnImport:  # an importlib.abc.MetaPathFinder (importing importlib.abc costs 15 ms)
    """Finds nothing itself: it hands each driver module still to watch the loader the other
    finders give it, wrapped so that the module is watched as soon as it has run."""

    def __init__(self, later: dict[str, Watch]) -> None:
        self.later = later

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.later:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = cast("Loader", _Watching(spec.loader, self.later.pop(fullname)))
        return spec


class _Watching:  # an importlib.abc.Loader
    """The driver module's own loader, which watches the module once it has run."""

    def __init__(self, loader: Loader, watch: Watch) -> None:
        self.loader = loader
        self.watch = watch

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.watch(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, get_source...
        return getattr(self.loader, name)


def _checked(connect: Callable[..., Any], call: str, check: Callable[[str], None]) -> Any:
    @functools.wraps(connect)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(call)
        return connect(*args, **kwargs)

    return checked


def _checked_async(connect: Callable[..., Any], call: str, check: Callable[[str], None]) -> Any:
    @functools.wraps(connect)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        check(call)
        return await connect(*args, **kwargs)

    return checked
