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
