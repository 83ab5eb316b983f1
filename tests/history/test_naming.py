from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from migrail.core.errors import FatalError
from migrail.history.naming import following, next_revision_id, slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("add_user_roles", "add_user_roles"),
        ("Add user-roles!", "add_user_roles"),
        ("v2 API", "v2_api"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_slugify_refuses_a_name_without_words() -> None:
    with pytest.raises(FatalError, match="'--' is not a usable revision name"):
        slugify("--")


def test_sequence_follows_the_highest_number() -> None:
    assert next_revision_id([], "sequence") == "0001"
    assert next_revision_id(["0001", "0002", "0010"], "sequence") == "0011"


def test_sequence_after_a_history_of_hash_ids_counts_revisions() -> None:
    assert next_revision_id(["ae1027a6acf", "1975ea83b712"], "sequence") == "0003"


def test_timestamp_naming_uses_utc_time() -> None:
    now = datetime(2026, 11, 27, 9, 30, 0, tzinfo=UTC)
    assert next_revision_id(["0001"], "timestamp", now) == "20261127_093000"
    with pytest.raises(FatalError, match="already exists"):
        next_revision_id(["20261127_093000"], "timestamp", now)


def test_alembic_naming_makes_alembic_s_random_hex_ids() -> None:
    first = next_revision_id(["1975ea83b712"], "alembic")
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert following(first, "alembic") not in (first, "1975ea83b712")
    assert re.fullmatch(r"[0-9a-f]{12}", following(first, "alembic"))
