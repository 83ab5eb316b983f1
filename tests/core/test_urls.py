from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import URL

from migrail.core.errors import FatalError
from migrail.core.urls import mask_text, mask_url, parse_url
from migrail.main import main
from migrail.postgres import cluster


def test_parse_url_uses_psycopg_and_masks_the_password() -> None:
    url = parse_url("postgres://app:s3cret@db.internal:5432/agent_armor", source="DATABASE_URL")
    assert url.drivername == "postgresql+psycopg"
    assert mask_url(url) == "postgresql://app:***@db.internal:5432/agent_armor"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "not a url",
            "DATABASE_URL is not a valid database URL (its value is not shown: it may hold a "
            "password)",
        ),
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


# Hostile passwords are made of characters a URL gives a meaning to, each between two markers:
# letters nothing else prints (not a host, a message or a hint). Any two adjacent characters of
# a password include a marker, so "no marker in the output" means no piece of the password of
# two characters or more was shown, raw or percent-encoded.
MARKERS = "жǂ☃€"
HOSTILE_CHARACTERS = "@#% /:?=&'\"\\[]+;,!$*()~`^{}|<>"


def _hostile_passwords() -> list[str]:
    """Each hostile character alone, then random mixes of them (the same ones every run)."""
    rng = random.Random(20261127)
    singles = [f"ж{character}ǂ{character}☃" for character in HOSTILE_CHARACTERS]
    mixes = [
        "".join(rng.choice(MARKERS) + rng.choice(HOSTILE_CHARACTERS) for _ in range(length))
        + rng.choice(MARKERS)
        for length in [rng.randint(2, 16) for _ in range(40)]
    ]
    shaped = ["ж@ǂ#☃ €%ǂzжz", "ж@db:5432/ǂ", "ж://ǂ@☃", "ж:ǂ@€@☃", "€"]  # URL-like pieces
    return singles + mixes + shaped


HOSTILE_PASSWORDS = _hostile_passwords()


def _shows_a_password(text: str) -> bool:
    """Whether ``text`` holds a marker, as it is or percent-encoded (as a URL renders it)."""
    return any(marker in text or quote(marker).lower() in text.lower() for marker in MARKERS)


def _urls(password: str) -> list[str]:
    """URLs holding ``password`` as users write them: unencoded, and percent-encoded."""
    return [
        f"postgresql://app:{form}@db.internal:5432/agent_armor"
        for form in (password, quote(password, safe=""))
    ]


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_no_piece_of_a_hostile_password_is_shown_by_masking(password: str) -> None:
    encoded = quote(password, safe="")
    texts = [
        *_urls(password),
        f"cannot reach postgresql://app:{password}@db.internal:5432/x: timeout expired",
        f"postgresql://app:{password}@/x?host=/run/postgresql&sslmode=require",
        f"from postgresql://app:{encoded}@h/x to postgres://b:{password}@h/y (both refused)",
        f"postgresql://app@db/x?password={encoded}&sslmode=require",
        f"connection string: {make_conninfo('', host='db', password=password, dbname='x')}",
    ]
    for text in texts:
        assert _shows_a_password(text)  # the assertion below can fail
        assert not _shows_a_password(mask_text(text)), text
        assert not _shows_a_password(mask_url(text)), text


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_a_hostile_password_parses_whole_and_is_never_shown(password: str) -> None:
    for raw in _urls(password):
        url = parse_url(raw, source="DATABASE_URL")
        assert (url.username, url.password, url.host, url.port, url.database) == (
            "app",
            password,
            "db.internal",
            5432,
            "agent_armor",
        )
        assert mask_url(url) == "postgresql://app:***@db.internal:5432/agent_armor"
    for raw in [
        f"mysql://app:{password}@db/x",
        f"postgresql://app:{password}@db:5432",
        f"postgresql://app:{password}@db:port/x",
        f"app:{password}@db/x",
    ]:
        with pytest.raises(FatalError) as caught:
            parse_url(raw, source="DATABASE_URL")
        assert not _shows_a_password(f"{caught.value.message}\n{caught.value.hint}"), raw


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_status_shows_no_piece_of_a_hostile_password(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    password: str,
) -> None:
    """Every message of ``status``: the connection error, and its pg_isready hint."""
    hint = "hint: is the server running and reachable? try: pg_isready"
    shown = {
        "127.0.0.1:1/agent_armor": "127.0.0.1:1/agent_armor: Connection refused\n"
        f"{hint} -h 127.0.0.1 -p 1\n",
        "/agent_armor?host=/nonexistent": "/agent_armor?host=%2Fnonexistent: "
        f"No such file or directory\n{hint} -h /nonexistent\n",
    }
    for form in (password, quote(password, safe="")):
        for target, expected in shown.items():
            monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{form}@{target}")
            assert main(["status"]) == 2
            out, err = capsys.readouterr()
            assert out == ""
            assert not _shows_a_password(err), err
            assert err == f"error: cannot connect to postgresql://app:***@{expected}"


def test_status_on_a_live_database_shows_no_piece_of_a_hostile_password(
    project: Path,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Connected (the suite's server may ignore passwords) or refused: nothing of it shown."""
    template = database_url.set(password="PASSWORD").render_as_string(hide_password=False)
    for password in HOSTILE_PASSWORDS[::7]:
        for form in (password, quote(password, safe="")):
            monkeypatch.setenv("DATABASE_URL", template.replace("PASSWORD", form))
            assert main(["status", "--debug"]) in (0, 2)
            out, err = capsys.readouterr()
            assert not _shows_a_password(out + err), out + err


def test_a_password_with_an_unencoded_at_hash_space_and_percent_logs_in(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The password is the whole userinfo after ``user:``, up to the last ``@``: the server
    (scram, so it checks) lets the user in with it, written as users paste it."""
    password = "p@ss#w rd%zz/?:"
    bindir = cluster.find_embedded_bindir() or cluster.find_local_bindir()
    assert bindir is not None
    with cluster.private_cluster(bindir) as running:
        admin = f"postgresql://postgres@/postgres?host={running.socket_dir}"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                psycopg.sql.SQL("CREATE ROLE app LOGIN PASSWORD {}").format(password)
            )
            (running.data_dir / "pg_hba.conf").write_text(
                "local all postgres trust\nlocal all all scram-sha-256\n"
            )
            connection.execute("SELECT pg_reload_conf()")
        socket = running.socket_dir
        monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{password}@/postgres?host={socket}")
        assert main(["status"]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "ss#w" not in out + err
    assert "environment: development (postgresql://app:***@/postgres?host=" in err


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "CREATE ROLE reporting LOGIN PASSWORD 'S3cret''pw' IN ROLE no_such_group",
            "CREATE ROLE reporting LOGIN PASSWORD '***' IN ROLE no_such_group",
        ),
        ("ALTER ROLE app WITH PASSWORD 'S3 cret';", "ALTER ROLE app WITH PASSWORD '***';"),
        (
            "create user app encrypted password 'S3cret' valid until 'infinity'",
            "create user app encrypted password '***' valid until 'infinity'",
        ),
        ("ALTER ROLE app PASSWORD E'S3\\'cret'", "ALTER ROLE app PASSWORD '***'"),
        ("ALTER ROLE app PASSWORD $pw$S3'cret$pw$", "ALTER ROLE app PASSWORD '***'"),
        ("ALTER ROLE app PASSWORD 'S3\ncret'\nNEXT", "ALTER ROLE app PASSWORD '***'\nNEXT"),
        (
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db', "
            "password 'S3cret')",
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db', password '***')",
        ),
        (
            "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'x', password 'S3cret')",
            "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'x', password '***')",
        ),
        (
            "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password 'S3cret')",
            "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password '***')",
        ),
        ("ALTER ROLE app PASSWORD NULL", "ALTER ROLE app PASSWORD NULL"),
    ],
)
def test_mask_text_masks_the_password_literals_of_sql(text: str, masked: str) -> None:
    """A failing revision's statement is printed, reported and recorded in migrail.history."""
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


def test_a_quoted_connection_string_value_is_masked_whole() -> None:
    """libpq quotes with backslash escapes; shown as Python shows a string, they are doubled."""
    conninfo = make_conninfo("", host="db", password="a'b \"Xy", dbname="x")
    assert conninfo == "host=db password='a\\'b \"Xy' dbname=x"
    for text in (conninfo, repr(conninfo), str({"dsn": conninfo})):
        assert "Xy" not in mask_text(text), text
    assert mask_text("password='a\\\\'b\"Xy' sslmode=require") == "password=*** sslmode=require"


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_no_piece_of_a_hostile_password_in_sql_or_a_shown_connection_string_is_shown(
    password: str,
) -> None:
    literal = password.replace("'", "''")
    conninfo = make_conninfo("", host="db", password=password, dbname="x")
    texts = [
        repr(conninfo),
        str([conninfo]),
        f"CREATE ROLE reporting LOGIN PASSWORD '{literal}' IN ROLE no_such_group",
        f"ALTER ROLE app ENCRYPTED PASSWORD '{literal}'",
        f"CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (password '{literal}')",
        f"CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'x', password '{literal}')",
    ]
    for text in texts:
        assert _shows_a_password(text)  # the assertion below can fail
        assert not _shows_a_password(mask_text(text)), text
