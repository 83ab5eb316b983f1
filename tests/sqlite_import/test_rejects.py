"""The rejects file: one JSON object a line, whatever the rejected row held."""

from __future__ import annotations

import json
from pathlib import Path

from migrail.sqlite_import.load import Rejects


def _strict(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def test_infinities_and_blobs_are_written_as_json_can_hold_them(tmp_path: Path) -> None:
    rejects = Rejects(tmp_path / "r.jsonl")
    rejects.add("nums", {"amount": float("-inf"), "logo": b"\x00\xff"}, None, "overflow")
    rejects.close()
    line = (tmp_path / "r.jsonl").read_text()
    assert json.loads(line, parse_constant=_strict)["row"] == {"amount": "-inf", "logo": "00ff"}
