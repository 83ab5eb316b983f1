"""Where each PostgreSQL driver opens a connection, watched: so that ``usercode`` can refuse a
new connection while the project's code runs, however the code reached the driver.

A revision may call ``psycopg.connect``, import ``connect`` from it before it runs, build its own
SQLAlchemy engine, or use a pool: all of them end in one function of the driver, which each
driver looks up at the moment it connects. That function is the one replaced here, once for the
process; a driver that is not installed is left out.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

# (module, attribute, what the user called): the function every connection of the driver goes
# through. psycopg 3: ``Connection.connect``, ``AsyncConnection.connect`` and subclasses (an
# SQLAlchemy engine's, migrail's own) all make it through ``generators.connect``.
_SYNC = (
    ("psycopg.generators", "connect", "psycopg.connect"),
    ("psycopg2", "_connect", "psycopg2.connect"),
)
_ASYNC = (("asyncpg.connect_utils", "_connect", "asyncpg.connect"),)


class _Installed:
    done = False


def watch_connects(check: Callable[[str], None]) -> None:
    """Have ``check(call)`` run before every new connection of every installed driver (``call``:
    the driver's connect as people write it); it refuses one by raising."""
    if _Installed.done:
        return
    _Installed.done = True
    for module_name, attribute, call in _SYNC:
        module = _installed(module_name)
        if module is not None:
            setattr(module, attribute, _checked(getattr(module, attribute), call, check))
    for module_name, attribute, call in _ASYNC:
        module = _installed(module_name)
        if module is not None:
            setattr(module, attribute, _checked_async(getattr(module, attribute), call, check))


def _installed(module_name: str) -> Any:
    """The module, imported now (a revision may import it only while it runs), or ``None``."""
    try:
        if importlib.util.find_spec(module_name.partition(".")[0]) is None:
            return None
        return importlib.import_module(module_name)
    except ImportError:
        return None


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
