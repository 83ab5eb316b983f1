"""Cleanup that a signal cannot cut short: a Ctrl-C or SIGTERM during ``shielded`` arrives after."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

# Another thread is running, as in a real run (the connection watchdog, rich's refresh): a
# signal the main thread blocks is delivered to that thread instead, and Python still runs its
# handler in the main thread.
_SCRIPT = """
import os, signal, sys, threading, time
from migrail.core.signals import shielded, sigterm_raises

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal: a job started
# in the background by a shell without job control has SIGINT ignored, and so would this
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
with sigterm_raises():
    try:
        with shielded():
            os.kill(os.getpid(), {signum})
            for _ in range(1_000_000):
                pass
            print("the block ran to its end", flush=True)
        print("not delivered")
    except KeyboardInterrupt as exc:
        print(f"delivered: {{type(exc).__name__}}")
"""


@pytest.mark.parametrize(
    ("signum", "delivered"),
    [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Terminated")],
)
def test_a_signal_during_a_shielded_block_is_delivered_when_it_ends(
    signum: int, delivered: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(signum=int(signum))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (
        0,
        f"the block ran to its end\ndelivered: {delivered}\n",
    ), done.stderr


# The project's code, inside ``handlers_kept``, ignores SIGTERM, sets a mask that blocks it, sets
# Ctrl-C ignored behind Python's back (as a C extension can), and changes other signals.
_KEPT_SCRIPT = """
import ctypes, os, signal
from migrail.core.signals import handlers_kept, sigterm_raises

signal.signal(signal.SIGINT, signal.default_int_handler)
with sigterm_raises():
    with handlers_kept():
        print(signal.signal(signal.SIGTERM, signal.SIG_IGN) is signal.getsignal(signal.SIGTERM))
        signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGTERM, signal.SIGUSR1})
        print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, ())))
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        ctypes.CDLL(None).signal(signal.SIGINT, ctypes.c_void_p(1))  # SIG_IGN
    print(signal.getsignal(signal.SIGUSR2), sorted(signal.pthread_sigmask(signal.SIG_BLOCK, ())))
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            os.kill(os.getpid(), signum)
            for _ in range(1_000_000):
                pass
            print("not delivered")
        except KeyboardInterrupt as exc:
            print(f"delivered: {type(exc).__name__}")
"""


def test_the_projects_code_cannot_take_ctrl_c_or_sigterm_away() -> None:
    """Within ``handlers_kept``, changes to Ctrl-C's and SIGTERM's handlers and mask do not take
    effect, and one made behind Python's back is undone at its end; other signals change as
    asked."""
    done = subprocess.run(
        [sys.executable, "-c", _KEPT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (
        0,
        "True\n"
        "[<Signals.SIGUSR1: 10>]\n"
        "1 [<Signals.SIGUSR1: 10>]\n"
        "delivered: KeyboardInterrupt\n"
        "delivered: Terminated\n",
    ), done.stderr
