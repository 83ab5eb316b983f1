"""Alembic environment of agent_armor; migrail passes the connection and the models' metadata."""

from migrail.alembic_env import run_migrations

run_migrations()
