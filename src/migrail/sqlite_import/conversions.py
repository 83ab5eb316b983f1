"""Each SQLite value made into what its PostgreSQL column holds, or rejected with a reason.

SQLite keeps any value in any column (a text ``'n/a'`` in an INTEGER column is stored as it is):
a value whose storage class contradicts its column's declared type is reported as loose typing,
never coerced. Then the target's type decides: 0/1 to boolean, ISO text (or Unix seconds or
Julian days, when the mapping says so) to timestamptz, JSON text validated for jsonb, integer
keys to text, BLOB to bytea. Anything else goes as text, for PostgreSQL to accept or reject.

A number goes into numeric(p, s) only as it is: PostgreSQL would round 1.005 to 1.01 without a
word, so a value with more decimal places than the scale is rejected, unless the mapping says
``convert = "round"`` for its column; one too large for the precision is rejected either way.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING

from migrail.sqlite_import.jsonb import jsonb_text

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from migrail.sqlite_import.catalog import TargetColumn
    from migrail.sqlite_import.source import SourceColumn

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
JULIAN_EPOCH_MS = 210_866_760_000_000  # the Julian day of 1970-01-01 00:00 UTC, in ms
FLOAT4_MAX = 3.4028234663852886e38  # the largest finite float4
_INT_RANGES = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
TEXT_TYPES = ("text", "varchar", "bpchar", "citext", "name")
TIME_TYPES = ("timestamptz", "timestamp", "date")
# What each affinity's column may hold without contradicting its declared type.
_FITTING: dict[str, tuple[type, ...]] = {
    "INTEGER": (int,),
    "REAL": (float, int),
    "TEXT": (str,),
    "NUMERIC": (int, float, str),
}
_CLASS = {int: "integer", float: "real", str: "text", bytes: "blob"}


class Rejected(Exception):
    """A value that cannot be loaded as it is; ``reason`` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Convert = Callable[[object], object]


@dataclass(frozen=True)
class Conversion:
    """How one column's values are converted, and what the report calls it."""

    convert: Convert
    description: str
    # Values of exactly these types go through unchanged: the load calls nothing for them.
    passthrough: tuple[type, ...] = ()
    # The common case, cheaply: it may raise anything (TypeError...) for a value it does not
    # take, and ``convert`` then decides, and says why; it never takes one ``convert`` refuses.
    fast: Convert | None = None
    # A column whose values are all of this one type, mapped by this builtin: in C, with no
    # Python call per value (integer keys into text: str).
    bulk: tuple[type, Convert] | None = None


def shown(value: object) -> str:
    """A value as a reason names it: its storage class and a bounded repr."""
    kind = _CLASS.get(type(value), type(value).__name__)
    text = value.hex() if isinstance(value, bytes) else repr(value)
    return f"{kind} {text[:40]}{'...' if len(text) > 40 else ''}"


def conversion(
    source: SourceColumn, target: TargetColumn, reading: str | None, zone: ZoneInfo | None
) -> Conversion:
    """The conversion of ``source``'s values into ``target`` (``reading``: the mapping's)."""
    to_value, what = _by_target(source, target, reading, zone)
    fitting = _FITTING.get(source.affinity)
    declared = source.declared or "untyped"
    not_null = target.not_null

    def convert(value: object) -> object:
        if value is None:
            if not_null:
                raise Rejected(f"NULL, and {target.name} is NOT NULL")
            return None
        if fitting is not None and not isinstance(value, fitting):
            raise Rejected(
                f"{shown(value)} in a column declared {declared} (SQLite's loose typing)"
            )
        return to_value(value)

    unchanged = _UNCHANGED.get(target.base)
    if target.base in ("varchar", "bpchar") and target.length is not None:
        unchanged = None
    if fitting is not None and unchanged not in fitting:
        unchanged = None
    passthrough = ((unchanged,) if unchanged else ()) + (() if not_null else (type(None),))
    fast = _fast(target.base, reading, zone) if fitting is None or str in fitting else None
    if fast is not None and not not_null:
        fast = _or_null(fast)
    described = f"{declared} -> {target.type}{f' ({what})' if what else ''}"
    keys = target.base in TEXT_TYPES and target.length is None and fitting is not None
    bulk = (int, str) if keys and source.affinity in ("INTEGER", "NUMERIC") else None
    return Conversion(convert, described, passthrough, fast or convert, bulk)


def _or_null(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


# 2024-01-02 03:04:05.123456: a longer value may hold more digits than a microsecond's.
_LONGEST_PLAIN = 26


def _fast(base: str, reading: str | None, zone: ZoneInfo | None) -> Convert | None:
    """The common case of a text column: JSON for jsonb, naive ISO text for timestamptz."""
    if base == "jsonb":
        return jsonb_text  # type: ignore[return-value]
    if base != "timestamptz" or reading not in (None, "iso") or zone is None:
        return None
    if zone.key == "UTC":

        def utc(value: object) -> object:
            if len(value) > _LONGEST_PLAIN:  # type: ignore[arg-type]
                raise ValueError("finer than microseconds, maybe: the full conversion rounds")
            return datetime.fromisoformat(value + "+00:00")  # type: ignore[operator]

        return utc

    def naive(value: object) -> object:
        if len(value) > _LONGEST_PLAIN:  # type: ignore[arg-type]
            raise ValueError("finer than microseconds, maybe: the full conversion rounds")
        moment = datetime.fromisoformat(value)  # type: ignore[arg-type]
        if moment.tzinfo is not None:
            raise ValueError("has an offset: the full conversion keeps it")
        aware = moment.replace(tzinfo=zone)
        if aware.utcoffset() != moment.replace(tzinfo=zone, fold=1).utcoffset():
            raise ValueError("at a change of the zone's clocks: the full conversion says so")
        return aware

    return naive


# The value types each target type takes as they are (int8 holds every SQLite integer).
_UNCHANGED: dict[str, type] = {
    **dict.fromkeys(TEXT_TYPES, str),
    "int8": int,
    "float8": float,
    "bytea": bytes,
}


def _by_target(
    source: SourceColumn, target: TargetColumn, reading: str | None, zone: ZoneInfo | None
) -> tuple[Convert, str]:
    base = target.base
    if base in TIME_TYPES:
        return _time(base, reading, zone)
    if base == "bool":
        return _boolean, "0/1"
    if base in _INT_RANGES:
        return _integer(_INT_RANGES[base]), ""
    if base == "float4":
        return _real, ""
    if base == "float8":
        return _number(float, "a number"), ""
    if base == "numeric":
        rounding = reading == "round"
        return _decimal(target, rounding), "rounded to the scale" if rounding else ""
    if base in TEXT_TYPES:
        keys = source.affinity in ("INTEGER", "NUMERIC")
        return _text(target.length, keys), "integer as text" if keys and base == "text" else ""
    if base == "jsonb":
        return _jsonb, "validated JSON"
    if base == "json":
        return _json, "validated JSON"
    if base == "bytea":
        return _only(bytes, "a blob"), ""
    if base == "uuid":
        return _uuid, ""
    return _as_text, "as text, parsed by PostgreSQL"


def _boolean(value: object) -> object:
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise Rejected(f"{shown(value)} where a boolean 0 or 1 was expected")


def _integer(bound: int) -> Convert:
    def convert(value: object) -> object:
        if type(value) is not int:
            raise Rejected(f"{shown(value)} where an integer was expected")
        if not -bound <= value < bound:
            raise Rejected(f"{value} is out of the column's integer range")
        return value

    return convert


def _number(kind: type, wanted: str) -> Convert:
    def convert(value: object) -> object:
        if type(value) not in (int, float):
            raise Rejected(f"{shown(value)} where {wanted} was expected")
        return kind(value)

    return convert


def _real(value: object) -> object:
    """A float4 holds up to about 3.4e38: a larger double (SQLite's REAL is one) is out of its
    range, as PostgreSQL would say of it; infinities and NaN fit."""
    number = _number(float, "a number")(value)
    if math.isfinite(number) and abs(number) > FLOAT4_MAX:  # type: ignore[arg-type]
        raise Rejected(f"{number} is out of the range of real (float4)")
    return number


# Wide enough for any SQLite number at any scale numeric allows: quantize never overflows it.
WIDE = Context(prec=2_400)


def _decimal(target: TargetColumn, rounding: bool) -> Convert:
    """A number as numeric(p, s) holds it exactly, or rejected; rounded as PostgreSQL rounds
    (half away from zero) where ``rounding`` is asked for. A float is taken as its shortest
    repr, the decimal SQLite shows for it (1.005, not 1.00499999999999989...)."""
    precision, scale = target.precision, target.scale
    step = Decimal(1).scaleb(-scale) if scale is not None else None
    digits = precision - scale if precision and scale is not None else None  # before the point
    limit = Decimal(10) ** digits if digits is not None else None
    shape = f"numeric({precision},{scale})"

    def convert(value: object) -> object:
        if type(value) is int:
            number = Decimal(value)
        elif type(value) is float:
            number = Decimal(repr(value))
        else:
            raise Rejected(f"{shown(value)} where a number was expected")
        if step is None or not number.is_finite():
            if limit is not None and number.is_infinite():
                raise Rejected(f"{value} does not fit {shape}, which holds no infinity")
            return number
        fitted = number.quantize(step, rounding=ROUND_HALF_UP, context=WIDE)
        if limit is not None and abs(fitted) >= limit:  # rounded or not, PostgreSQL refuses it
            raise Rejected(
                f"{value} is too large for {shape} (at most {digits} digit(s)"
                " before the decimal point" + (f", {fitted} rounded)" if fitted != number else ")")
            )
        if fitted != number and not rounding:
            raise Rejected(
                f"{value} has more decimal places than {target.name}'s {shape} keeps"
                f' (PostgreSQL would store {fitted}); convert = "round" in the mapping'
                " accepts the rounding"
            )
        return fitted

    return convert


def _text(length: int | None, integers: bool) -> Convert:
    def convert(value: object) -> object:
        if type(value) is int and integers:
            value = str(value)
        if type(value) is not str:
            raise Rejected(f"{shown(value)} where text was expected")
        if length is not None and len(value) > length:
            raise Rejected(f"{len(value)} characters, longer than the column's {length}")
        return value

    return convert


def _only(kind: type, wanted: str) -> Convert:
    def convert(value: object) -> object:
        if type(value) is not kind:
            raise Rejected(f"{shown(value)} where {wanted} was expected")
        return value

    return convert


def _json(value: object) -> object:
    if type(value) is not str:
        raise Rejected(f"{shown(value)} where JSON text was expected")
    try:
        json.loads(value, parse_constant=_no_constant)
    except ValueError as exc:
        raise Rejected(f"not valid JSON: {exc}") from None
    return value


def _jsonb(value: object) -> object:
    if type(value) is not str:
        raise Rejected(f"{shown(value)} where JSON text was expected")
    try:
        return jsonb_text(value)
    except ValueError as exc:
        raise Rejected(f"not valid JSON for jsonb: {exc}") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _uuid(value: object) -> object:
    try:
        if type(value) is bytes:
            return uuid.UUID(bytes=value)
        if type(value) is str:
            return uuid.UUID(value)
    except ValueError:
        pass
    raise Rejected(f"{shown(value)} where a UUID was expected")


def _as_text(value: object) -> object:
    if type(value) in (int, float, str):
        return str(value)
    raise Rejected(f"{shown(value)} where text was expected")


def _time(base: str, reading: str | None, zone: ZoneInfo | None) -> tuple[Convert, str]:
    if base == "date":
        return _date, "ISO date"
    aware = base == "timestamptz"
    if reading in ("unix-seconds", "unix-milliseconds", "julian-day"):
        to_utc = _NUMERIC_TIMES[reading]

        def from_number(value: object) -> object:
            if type(value) not in (int, float):
                raise Rejected(f"{shown(value)} where {reading} were expected")
            try:
                moment = to_utc(value)  # type: ignore[arg-type]
            except (OverflowError, ValueError):
                raise Rejected(f"{value} {reading} is out of range") from None
            return moment if aware else moment.replace(tzinfo=None)

        return from_number, reading
    naive_in = f"naive in {zone.key}" if zone is not None and aware else "naive as given"
    if zone is not None and zone.key == "UTC":
        zone = UTC  # type: ignore[assignment]  # the same zone, a fixed offset: faster to print

    def from_text(value: object) -> object:
        if type(value) is not str:
            raise Rejected(
                f"{shown(value)} in a DATETIME column: say what it counts with convert = "
                '"unix-seconds", "unix-milliseconds" or "julian-day" in the mapping'
            )
        moment = _rounded_to_microseconds(value) if _FINER.search(value) else None
        if moment is None:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = _iso_padded(value)
        if not aware:
            if moment.tzinfo is not None:
                raise Rejected(f"{value!r} has an offset, and the column is without time zone")
            return moment
        if moment.tzinfo is None:
            if zone is None:
                raise Rejected(f"{value!r} has no offset, and no time zone was stated")
            return _local(value, moment, zone)
        return moment

    return from_text, f"ISO text, {naive_in}"


# More than six digits after the seconds: Python keeps six and drops the rest, PostgreSQL
# rounds to the nearest microsecond (2020-01-02 03:04:05.9999999 is 03:04:06).
_FINER = re.compile(r"(\d\d:\d\d:\d\d)\.(\d{7,})")


def _rounded_to_microseconds(value: str) -> datetime | None:
    found = _FINER.search(value)
    if found is None:
        return None
    fraction = Decimal("0." + found.group(2)).scaleb(6)
    microseconds = int(fraction.to_integral_value(rounding=ROUND_HALF_EVEN))
    whole = value[: found.start(2) - 1] + value[found.end(2) :]
    try:
        moment = datetime.fromisoformat(whole)
    except ValueError:
        moment = _iso_padded(whole)
    return moment + timedelta(microseconds=microseconds)


def _local(value: str, moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment``, naive, as a time of ``zone``; refused where the zone's clocks skip it (it
    never happened there) or show it twice (which of the two is meant cannot be told)."""
    first = moment.replace(tzinfo=zone)
    second = moment.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == moment:
        raise Rejected(
            f"{value!r} happens twice in {zone.key} (its clocks go back over it): write it with "
            "its offset"
        )
    raise Rejected(f"{value!r} never happened in {zone.key} (its clocks skip over it)")


def _iso_padded(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise Rejected(f"{shown(value)} is not an ISO 8601 date and time") from None


def _date(value: object) -> object:
    if type(value) is str:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Rejected(f"{shown(value)} where an ISO date was expected")


_NUMERIC_TIMES: dict[str, Callable[[float], datetime]] = {
    "unix-seconds": lambda value: EPOCH + timedelta(seconds=value),
    "unix-milliseconds": lambda value: EPOCH + timedelta(milliseconds=value),
    # As SQLite reads its own Julian days: to the millisecond (a double holds no finer).
    "julian-day": lambda value: (
        EPOCH + timedelta(milliseconds=round(value * 86_400_000) - JULIAN_EPOCH_MS)
    ),
}
