"""A batch of rows converted: a column at a time in the common case, else row by row, to find
the rows at fault and say why (the first column whose conversion refuses)."""

from __future__ import annotations

from collections.abc import Sequence

from migrail.sqlite_import.conversions import Conversion, Rejected

Refused = tuple[tuple[object, ...], str, str]  # the row as read, its column, why


def convert_rows(
    rows: list[tuple[object, ...]], names: Sequence[str], conversions: Sequence[Conversion]
) -> tuple[Sequence[Sequence[object]], list[tuple[object, ...]], list[Refused]]:
    """The rows converted, the same rows as read, and the rows a conversion refused."""
    columns = _by_columns(rows, conversions)
    if columns is not None:
        return list(zip(*columns, strict=True)), rows, []
    fast = [(c.fast or c.convert, c.passthrough) for c in conversions]
    good: list[list[object]] = []
    originals: list[tuple[object, ...]] = []
    refused: list[Refused] = []
    for row in rows:
        try:
            good.append(
                [
                    value if type(value) in unchanged else convert(value)
                    for (convert, unchanged), value in zip(fast, row, strict=True)
                ]
            )
        except (Rejected, TypeError, ValueError):  # the full conversion decides, and says why
            try:
                good.append([c.convert(value) for c, value in zip(conversions, row, strict=True)])
            except Rejected:
                refused.append((row, *_first_rejected(names, conversions, row)))
                continue
        originals.append(row)
    return good, originals, refused


def _by_columns(
    rows: list[tuple[object, ...]], conversions: Sequence[Conversion]
) -> list[Sequence[object]] | None:
    """The common case, a column at a time: a column whose values are all of the types it
    takes as they are stays as read, one of a single type with a builtin for it is mapped by
    the builtin, the others are mapped by their fast conversion. None
    when any value is not the common case: the rows are then converted one by one."""
    if not rows:
        return None
    columns: list[Sequence[object]] = []
    for values, conversion_ in zip(zip(*rows, strict=True), conversions, strict=True):
        kinds = set(map(type, values))
        if conversion_.passthrough and kinds <= set(conversion_.passthrough):
            columns.append(values)
            continue
        if conversion_.bulk is not None and kinds == {conversion_.bulk[0]}:
            columns.append(list(map(conversion_.bulk[1], values)))
            continue
        try:
            columns.append(list(map(conversion_.fast or conversion_.convert, values)))
        except (Rejected, TypeError, ValueError):
            return None
    return columns


def _first_rejected(
    names: Sequence[str], conversions: Sequence[Conversion], row: tuple[object, ...]
) -> tuple[str, str]:
    for name, conversion_, value in zip(names, conversions, row, strict=True):
        try:
            conversion_.convert(value)
        except Rejected as rejected:
            return name, rejected.reason
    return "", "rejected"  # pragma: no cover - the full conversion raised for one of them
