"""migrail.sum: what it records, and every way the revision files can disagree with it."""

from __future__ import annotations

from migrail.history.sums import SUM_FILE, digest, record, render_sum, verify


def test_the_sum_lists_each_file_then_a_total_over_the_list() -> None:
    text = render_sum({"0002_b.py": b"two", "0001_a.py": b"one"})
    lines = text.splitlines()
    assert lines[:2] == [f"0001_a.py {digest(b'one')}", f"0002_b.py {digest(b'two')}"]
    assert lines[2] == f"total {digest((lines[0] + chr(10) + lines[1] + chr(10)).encode())}"
    assert verify(text, {"0001_a.py": b"one", "0002_b.py": b"two"}) == []


def test_changed_removed_unrecorded_and_hand_edited_are_told_apart() -> None:
    text = render_sum({"0001_a.py": b"one", "0002_b.py": b"two"})
    problems = verify(text, {"0001_a.py": b"ONE", "0003_c.py": b"three"})
    assert [(p.kind, p.name) for p in problems] == [
        ("changed", "0001_a.py"),
        ("removed", "0002_b.py"),
        ("unrecorded", "0003_c.py"),
    ]
    edited = text.replace(digest(b"one"), digest(b"ONE"))
    assert [p.kind for p in verify(edited, {"0001_a.py": b"ONE", "0002_b.py": b"two"})] == [
        "corrupt"
    ]
    assert f"{SUM_FILE} was edited by hand" in verify(edited, {})[0].message


def test_recording_new_revisions_keeps_what_was_recorded() -> None:
    text = render_sum({"0001_a.py": b"one"})
    updated = record(text, {"0001_a.py": b"edited", "0002_b.py": b"two"})
    assert verify(updated, {"0001_a.py": b"one", "0002_b.py": b"two"}) == []
