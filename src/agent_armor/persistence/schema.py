"""agent_armor's tables, ported from the Drizzle schema (src/persistence/schema.ts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base; its ``metadata`` is what migrail compares migrations against.

    Every constraint gets its name from the naming convention, so that a revision can drop the
    constraint it added by that name (``op.drop_constraint(None, ...)`` cannot run). A primary key
    keeps the name PostgreSQL gives it, which the tables already have.
    """

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "%(table_name)s_pkey",
        }
    )


class Task(Base):
    """A unit of work tracked by agent_armor."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    owner: Mapped[str | None] = mapped_column(Text)
    # "metadata" is reserved on declarative classes, so the attribute is named for what it holds.
    task_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


metadata: MetaData = Base.metadata
