"""agent_armor's engine and sessions, from ``DATABASE_URL`` (``DATABASE_URL_TEST`` under test).

As in the Drizzle project this replaces, ``.env`` (and ``.env.test`` for tests) is read when
present; variables already set in the environment win.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from dotenv import load_dotenv
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def database_url(*, test: bool = False) -> str:
    """The URL to connect to: ``DATABASE_URL_TEST`` (else ``DATABASE_URL``) when ``test``."""
    load_dotenv(PROJECT_ROOT / (".env.test" if test else ".env"), override=False)
    load_dotenv(PROJECT_ROOT / ".env", override=False)
    names = ("DATABASE_URL_TEST", "DATABASE_URL") if test else ("DATABASE_URL",)
    for name in names:
        if value := os.environ.get(name, "").strip():
            url = make_url(value)
            if url.drivername in ("postgres", "postgresql"):
                url = url.set(drivername="postgresql+psycopg")
            return url.render_as_string(hide_password=False)
    raise RuntimeError(f"{' or '.join(names)} is not set (see .env.example)")


@cache
def get_engine(*, test: bool = False) -> Engine:
    """One engine per process (and per test flag), with pre-ping for long-lived services."""
    return create_engine(database_url(test=test), pool_pre_ping=True)


def get_sessionmaker(*, test: bool = False) -> sessionmaker[Session]:
    """Sessions bound to the engine; use ``with get_sessionmaker()() as session:``."""
    return sessionmaker(get_engine(test=test), expire_on_commit=False)
