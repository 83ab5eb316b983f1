from __future__ import annotations

import pytest

from migrail.errors import FatalError
from migrail.urls import mask_text, mask_url, parse_url


def test_parse_url_uses_psycopg_and_masks_the_password() -> None:
    url = parse_url("postgres://app:s3cret@db.internal:5432/agent_armor", source="DATABASE_URL")
    assert url.drivername == "postgresql+psycopg"
    assert mask_url(url) == "postgresql://app:***@db.internal:5432/agent_armor"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a url", "DATABASE_URL is not a valid database URL: 'not a url'"),
        ("mysql://app:pw@db/x", "DATABASE_URL is not a PostgreSQL URL: mysql://app:***@db/x"),
        (
            "postgresql://app:pw@db:5432",
            "DATABASE_URL names no database: postgresql://app:***@db:5432",
        ),
    ],
)
def test_parse_url_refuses_what_it_cannot_use(raw: str, message: str) -> None:
    with pytest.raises(FatalError) as caught:
        parse_url(raw, source="DATABASE_URL")
    assert caught.value.message == message
    assert "pw" not in caught.value.message


def test_mask_text_masks_every_url_in_free_text() -> None:
    text = "from postgresql://a:one@h/x to postgres://b:two@h/y, not postgresql://c@h/z"
    assert (
        mask_text(text)
        == "from postgresql://a:***@h/x to postgres://b:***@h/y, not postgresql://c@h/z"
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("app:pw@localhost/db", "app:***@localhost/db"),
        ("host=db password=pw dbname=x", "host=db password=*** dbname=x"),
        (
            "postgresql://app@db/x?password=pw&sslmode=require",
            "postgresql://app@db/x?password=***&sslmode=require",
        ),
        (
            "postgresql://app:***@db/x?password=***: refused",
            "postgresql://app:***@db/x?password=***: refused",
        ),
    ],
)
def test_mask_text_finds_passwords_outside_urls_too_and_is_idempotent(
    text: str, masked: str
) -> None:
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


def test_mask_url_masks_a_password_given_as_a_query_parameter() -> None:
    url = parse_url("postgresql://app@db:5432/x?password=pw&sslmode=require", source="X")
    assert mask_url(url) == "postgresql://app@db:5432/x?password=***&sslmode=require"
