"""What a project's ``migrations/env.py`` imports: ``from migrail.alembic_env import
run_migrations``. A stable name for users' files; the work is in ``migrail.engine.alembic_env``."""

from __future__ import annotations

from migrail.engine.alembic_env import refuse_protected, run_migrations

__all__ = ["refuse_protected", "run_migrations"]
