"""PostgreSQL durations (``500ms``, ``5s``, ``30min``), as ``lock_timeout`` and
``statement_timeout`` take them: read here so that a value the server would refuse, or one that
cancels everything, is said before a connection is made."""

from __future__ import annotations

import re

# A duration: a whole number, then a unit (none: milliseconds). Units are PostgreSQL's own.
_DURATION = re.compile(r"(?P<number>\d+)\s*(?P<unit>us|ms|s|min|h|d)?")
_MILLISECONDS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
# PostgreSQL keeps a timeout in milliseconds, in a 32-bit integer: about 24.8 days at most.
MAX_MILLISECONDS = 2**31 - 1


def milliseconds(text: str) -> float | None:
    """``text`` in milliseconds, or ``None`` where it is not a duration PostgreSQL reads."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        return None
    return int(found["number"]) * _MILLISECONDS[found["unit"] or "ms"]
