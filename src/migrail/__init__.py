"""migrail: a GitOps pipeline for PostgreSQL schema migrations with SQLAlchemy and Alembic."""

from __future__ import annotations

__version__ = "0.1.0"
