"""agent_armor's database layer: models (schema.py), engine and sessions (database.py)."""
