"""The revision graph read from file headers: heads, and what breaks a history."""

from __future__ import annotations

from pathlib import Path

from migrail.history.graph import Header, heads, problems, read_header


def _header(revision: str | None, *parents: str) -> Header:
    return Header(Path(f"{revision}_x.py"), revision, parents)


def test_headers_are_read_without_importing(tmp_path: Path) -> None:
    path = tmp_path / "0003_merge.py"
    path.write_text(
        '"""merge"""\nimport this_module_does_not_exist\n\n'
        "revision: str = '0003'\n"
        "down_revision: str | Sequence[str] | None = ('0001', '0002')  # both branches\n"
    )
    assert read_header(path) == Header(path, "0003", ("0001", "0002"))
    (tmp_path / "0001_base.py").write_text('revision = "0001"\ndown_revision = None\n')
    assert read_header(tmp_path / "0001_base.py").parents == ()


def test_a_linear_history_has_one_head_and_no_problem() -> None:
    history = [_header("0001"), _header("0002", "0001"), _header("0003", "0002")]
    assert [h.revision for h in heads(history)] == ["0003"]
    assert problems(history) == []


def test_two_heads_duplicates_dangling_parents_and_cycles_are_named() -> None:
    two_heads = [_header("0001"), _header("0002", "0001"), _header("0003", "0001")]
    [problem] = problems(two_heads)
    assert (problem.kind, problem.message) == (
        "multiple-heads",
        "the history has 2 heads: 0002_x, 0003_x",
    )
    dated = [
        Header(Path("2024-11-07-1502_create_x.py"), "1975ea83b712", ()),
        Header(Path("2024-11-08-0900_remove_x.py"), "ab12cd34ef56", ("1975ea83b712",)),
        Header(Path("2024_11_09_1000-c0ffee000001_add_y.py"), "c0ffee000001", ("1975ea83b712",)),
    ]
    assert [p.message for p in problems(dated)] == [
        "the history has 2 heads: 2024-11-08-0900_remove_x (ab12cd34ef56), "
        "2024_11_09_1000-c0ffee000001_add_y"
    ]
    [dangling] = problems([Header(Path("2024-11-08-0900_remove_x.py"), "ab12cd34ef56", ("0009",))])
    assert dangling.message == (
        "2024-11-08-0900_remove_x.py (ab12cd34ef56) builds on revision 0009, which does not exist"
    )
    kinds = [p.kind for p in problems([_header("0001"), _header("0001"), _header("0002", "0009")])]
    assert kinds == ["duplicate-id", "dangling-parent"]
    [cycle] = problems([_header("0001", "0002"), _header("0002", "0001")])
    assert cycle.kind == "cycle"
    assert cycle.message == "the history loops: 0001 -> 0002 -> 0001"


def test_a_long_history_does_not_exhaust_the_stack() -> None:
    history = [_header("0")] + [_header(str(i), str(i - 1)) for i in range(1, 5000)]
    assert problems(history) == []


def test_a_tuple_split_over_lines_and_alembics_own_template(tmp_path: Path) -> None:
    merge = tmp_path / "0004_merge.py"
    merge.write_text(
        'revision = "0004"\ndown_revision = (\n    "0002",\n    "0003",\n)\nbranch_labels = None\n'
    )
    assert read_header(merge) == Header(merge, "0004", ("0002", "0003"))
    template = tmp_path / "ae1027a6acf_add.py"
    template.write_text(
        "revision: str = 'ae1027a6acf'\n"
        "down_revision: Union[str, None] = '1975ea83b712'\n"
        "branch_labels: Union[str, Sequence[str], None] = None\n"
    )
    assert read_header(template).parents == ("1975ea83b712",)


def test_a_computed_parent_is_its_own_problem_not_a_second_root(tmp_path: Path) -> None:
    computed = tmp_path / "0002_x.py"
    computed.write_text('revision = "0002"\ndown_revision = PREVIOUS\n')
    header = read_header(computed)
    assert not header.readable
    found = problems([_header("0001"), header])
    assert [p.kind for p in found] == ["unreadable-header"]
