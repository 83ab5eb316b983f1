"""SIGTERM handled like Ctrl-C, so throwaway databases are removed when a CI job is cancelled,
and neither of them taken away from migrail by the project's code."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib import import_module
from types import FrameType
from typing import Any

from migrail.core.errors import Terminated


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` so ``finally`` clauses run.

    Only the main thread can install handlers; elsewhere, and where the program has installed a
    handler of its own, this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """Hold off Ctrl-C and SIGTERM while cleanup runs; they are delivered when the block ends.

    The handlers are swapped for one that notes the signal, rather than the signals blocked:
    a signal blocked in the main thread is delivered to another thread (a watchdog's, rich's
    refresh), and Python runs its handler in the main thread all the same, inside the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    swapped = {
        signum: signal.signal(signum, lambda caught, _: held.append(caught))
        for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) is not None  # None: set outside Python, not ours to swap
    }
    try:
        yield
    finally:
        for signum, previous in swapped.items():
            signal.signal(signum, previous)
        for caught in dict.fromkeys(held):
            signal.raise_signal(caught)


_KEPT = frozenset({int(signal.SIGINT), int(signal.SIGTERM)})  # as the C module has them
# The C module ``signal.signal`` and ``signal.pthread_sigmask`` call, looked up at each call:
# replaced there, the replacement also answers those imported by name (``from signal import
# signal``) before the block began. It has no type stubs.
_signal: Any = import_module("_signal")


@contextmanager
def handlers_kept() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM keep the handlers they have and stay unblocked: the
    project's code asking otherwise (``signal.signal``, ``signal.pthread_sigmask``) is answered
    as if it were done, and nothing changes. At the end, both handlers are set again as they
    were, undoing one a C extension set behind Python's back (a mask set there is not undone:
    reading the mask costs more than the rest of the block together, for a change no library
    is known to make).

    Kept rather than refused: the code that asks is often not the revision's but a library's,
    or an application factory installing its graceful shutdown, and refusing would fail a
    migration that would have run correctly, for a signal that may never come. When one comes,
    the operator's Ctrl-C, or the CI job's cancellation, is what must win: migrail's handler
    stops the revision, rolls it back and names it, where the code's own would have let it run
    on and commit (or, ignored, not stopped it at all).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    set_handler, set_mask = _signal.signal, _signal.pthread_sigmask
    # As the C module has them (0 and 1 for SIG_DFL and SIG_IGN, which it tells by identity):
    # through ``signal``'s wrappers, each call costs ten times as much.
    handlers = {signum: _signal.getsignal(signum) for signum in _KEPT}
    active = [True]
    _signal.signal = _kept_handler(set_handler, active)
    _signal.pthread_sigmask = _kept_mask(set_mask, active)
    try:
        yield
    finally:
        active.clear()
        _signal.signal, _signal.pthread_sigmask = set_handler, set_mask
        for signum, handler in handlers.items():
            if handler is not None:  # None: set outside Python, and not by the block's code
                set_handler(signum, handler)


def _kept_handler(set_handler: Callable[..., Any], active: list[bool]) -> Callable[..., Any]:
    """``_signal.signal`` (what ``signal.signal`` calls) within ``handlers_kept``: for Ctrl-C
    and SIGTERM, the checks the real one makes, then the handler in force, left in force."""

    def kept(signalnum: int, handler: Any) -> Any:
        if not active or signalnum not in _KEPT:
            return set_handler(signalnum, handler)
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("signal only works in main thread of the main interpreter")
        if handler not in (signal.SIG_DFL, signal.SIG_IGN) and not callable(handler):
            raise TypeError(
                "signal handler must be signal.SIG_IGN, signal.SIG_DFL, or a callable object"
            )
        return _signal.getsignal(signalnum)

    return kept


def _kept_mask(set_mask: Callable[..., Any], active: list[bool]) -> Callable[..., Any]:
    """``_signal.pthread_sigmask`` within ``handlers_kept``: Ctrl-C and SIGTERM are left out of
    what it blocks or unblocks, and a mask set whole keeps them as they are."""

    def kept(how: int, mask: Iterable[int]) -> Any:
        if not active:
            return set_mask(how, mask)
        wanted = {int(signum) for signum in mask} - _KEPT
        if how == signal.SIG_SETMASK:
            wanted |= set_mask(signal.SIG_BLOCK, ()) & _KEPT
        return set_mask(how, wanted)

    return kept
