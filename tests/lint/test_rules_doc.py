"""docs/rules.md explains every rule of migrail's own."""

from __future__ import annotations

import re
from pathlib import Path

from migrail.core.config import LOCK_CLASSES
from migrail.lint.findings import OWN_RULES

RULES_DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_every_own_rule_has_a_section_with_an_example_or_a_safe_way() -> None:
    sections = dict(re.findall(r"^### (\S+)\n(.*?)(?=^##|\Z)", RULES_DOC.read_text(), re.M | re.S))
    assert set(sections) == OWN_RULES | set(LOCK_CLASSES)  # lint's rules and staging's classes
    for rule, text in sections.items():
        assert "Safe" in text, f"{rule} says no safe alternative"
