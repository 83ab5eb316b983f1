"""What a run read of the environment: names, the values they held when first read, and
whether it walked all of it."""

from __future__ import annotations

import os

import pytest

from migrail.core.environ_reads import current, fingerprint, inherited, recording, unchanged


def test_reads_are_recorded_with_the_value_first_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_DEMO", "1")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    monkeypatch.delenv("SET_BY_THE_RUN", raising=False)
    with recording() as reads:
        assert current() is reads
        assert os.environ["SEED_DEMO"] == "1"
        assert os.getenv("NOT_SET_HERE") is None
        assert "SEED_DEMO" in os.environ
        os.environ.setdefault("SET_BY_THE_RUN", "x")  # as a .flaskenv loader does
        inherited(["PGHOST_FOR_A_CHILD"])  # what a template this run starts from stood on
        assert not reads.whole
    assert current() is None
    assert os.environ["SET_BY_THE_RUN"] == "x"  # written through to the real environment
    del os.environ["SET_BY_THE_RUN"]
    assert reads.seen == {
        "SEED_DEMO": "1",
        "NOT_SET_HERE": None,
        "SET_BY_THE_RUN": None,
        "PGHOST_FOR_A_CHILD": os.environ.get("PGHOST_FOR_A_CHILD"),
    }
    recorded = fingerprint(reads.seen, "salt")
    assert "1" not in recorded.values()  # digests, never values
    assert unchanged(recorded, "salt")  # the run's own setdefault is not a change
    monkeypatch.setenv("SEED_DEMO", "2")
    assert not unchanged(recorded, "salt")
    monkeypatch.setenv("SEED_DEMO", "1")
    monkeypatch.setenv("NOT_SET_HERE", "now set")
    assert not unchanged(recorded, "salt")


def test_walking_the_environment_counts_as_reading_all_of_it() -> None:
    with recording() as reads:
        dict(os.environ)
    assert reads.whole
    with recording() as reads:
        os.environ.copy()
    assert reads.whole


def test_only_reads_made_while_counts_holds_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's code reads SEED_DEMO; migrail reads COLUMNS and walks the environment
    outside it: neither counts. A template's variables count whenever they are inherited."""
    monkeypatch.setenv("SEED_DEMO", "1")
    project_code = False
    with recording(lambda: project_code) as reads:
        os.environ.get("COLUMNS")
        dict(os.environ)
        project_code = True
        os.environ.get("SEED_DEMO")
        project_code = False
        inherited(["FROM_A_TEMPLATE"])
        assert not unchanged({"UNSET_NOW": "digest"}, "salt")  # a look, not a read
    assert set(reads.seen) == {"SEED_DEMO", "FROM_A_TEMPLATE"}
    assert not reads.whole
