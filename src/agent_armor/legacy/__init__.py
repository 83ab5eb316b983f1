"""agent_armor's data as it was before PostgreSQL: a SQLite file (better-sqlite3), for
``migrail import`` to bring over. ``python -m agent_armor.legacy.generate`` writes it."""
