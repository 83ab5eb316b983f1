"""JSON text validated, and written as PostgreSQL prints a jsonb.

A jsonb is stored parsed: its keys reordered (by length, then bytes; the last of duplicates
kept) and printed with ``, `` and ``: ``, numbers as ``numeric`` prints them (``1.50`` stays,
``1e2`` is ``100``). Sending that text instead of the original makes what PostgreSQL prints back
the very text sent, so the checksum compares a jsonb without parsing it again. Python's C
parser and printer do it, with a hook ordering the keys; a number that Python's float would
print otherwise than numeric does sends the document the slow way, through Decimal.
"""

from __future__ import annotations

import json
from decimal import Decimal


class _Inexact(Exception):
    """A number whose float prints otherwise than PostgreSQL's numeric."""


def _key(item: tuple[str, object]) -> tuple[int, str]:
    # UTF-8 keeps the order of code points: only the length must be counted in bytes.
    key = item[0]
    return (len(key) if key.isascii() else len(key.encode("utf-8", "surrogatepass")), key)


def _ordered(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # A stable sort keeps duplicates in their order, and dict() keeps the last, as jsonb does.
    return dict(sorted(pairs, key=_key)) if len(pairs) > 1 else dict(pairs)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _exact_float(text: str) -> float:
    number = float(text)
    if repr(number) != numeric_text(Decimal(text)):
        raise _Inexact
    return number


_FAST = json.JSONDecoder(
    object_pairs_hook=_ordered, parse_float=_exact_float, parse_constant=_no_constant
)
_PRINT = json.JSONEncoder(ensure_ascii=False).encode
_SLOW = json.JSONDecoder(
    object_pairs_hook=_ordered, parse_float=Decimal, parse_constant=_no_constant
)


def jsonb_text(text: str) -> str:
    """``text`` as PostgreSQL prints it once stored as jsonb; ValueError if it is not JSON
    that a jsonb can hold."""
    if "\\u0000" in text:
        raise ValueError("\\u0000, which a jsonb cannot hold")
    try:
        printed = _PRINT(_FAST.decode(text))
    except _Inexact:
        printed = _printed(_SLOW.decode(text))
    if "\\u" in text:  # an escaped lone surrogate is no character: PostgreSQL refuses it
        try:
            printed.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a lone surrogate escape, which is no character") from None
    return printed


def _printed(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)}: {_printed(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(_printed, value)) + "]"
    if isinstance(value, Decimal):
        return numeric_text(value)
    return _PRINT(value)


def _string(text: str) -> str:
    return _PRINT(text)


def numeric_text(number: Decimal) -> str:
    """``number`` as PostgreSQL's numeric prints it."""
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_zero():
        number = number.copy_abs()
    return format(number, "f")
