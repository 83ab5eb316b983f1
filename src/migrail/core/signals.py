"""SIGTERM handled like Ctrl-C, so throwaway databases are removed when a CI job is cancelled."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

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
