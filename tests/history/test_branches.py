"""Where a history's heads part, as the two-heads hint shows it."""

from __future__ import annotations

from pathlib import Path

from migrail.history.branches import describe, fork
from migrail.history.graph import Header, heads


def _header(revision: str, *parents: str, name: str = "x") -> Header:
    return Header(Path(f"{revision}_{name}.py"), revision, parents)


def _described(history: list[Header]) -> list[str]:
    return describe(fork(history, heads(history)))


def test_each_branch_is_a_line_from_where_they_part() -> None:
    history = [
        _header("0001"),
        _header("0002", "0001"),
        _header("0003", "0002"),
        _header("0004", "0003"),
        _header("0005", "0002"),
    ]
    assert _described(history) == [
        "the branches from 0002_x:",
        "  0003_x -> 0004_x",
        "  0005_x",
    ]


def test_a_merge_inside_a_branch_stays_in_that_branch() -> None:
    history = [
        _header("0001"),
        _header("0002", "0001"),
        _header("0003", "0001"),
        _header("0004", "0002", "0003"),  # a merge, then a second head from the base
        _header("0005", "0001"),
    ]
    assert _described(history) == [
        "the branches from 0001_x:",
        "  0002_x -> 0003_x -> 0004_x",
        "  0005_x",
    ]


def test_a_long_branch_shows_where_it_starts_and_its_head() -> None:
    history = [_header("r0")] + [_header(f"r{i}", f"r{i - 1}") for i in range(1, 5000)]
    history.append(_header("other", "r0"))
    assert _described(history) == [
        "the branches from r0_x:",
        "  r1_x -> r2_x -> r3_x -> (4995 more) -> r4999_x",
        "  other_x",
    ]


def test_heads_that_share_nothing_part_from_base_and_many_heads_are_cut() -> None:
    history = [_header(f"root{i}") for i in range(7)]
    assert _described(history) == [
        "the branches from base:",
        *(f"  root{i}_x" for i in range(5)),
        "  (and 2 more heads)",
    ]


def test_names_without_their_ids_are_shown_with_them() -> None:
    history = [
        Header(Path("2024-11-07-1502_create_x.py"), "1975ea83b712", ()),
        Header(Path("2024-11-08-0900_remove_x.py"), "ab12cd34ef56", ("1975ea83b712",)),
        Header(Path("2024-11-09-1000_add_y.py"), "c0ffee000001", ("1975ea83b712",)),
    ]
    assert _described(history) == [
        "the branches from 2024-11-07-1502_create_x (1975ea83b712):",
        "  2024-11-08-0900_remove_x (ab12cd34ef56)",
        "  2024-11-09-1000_add_y (c0ffee000001)",
    ]
