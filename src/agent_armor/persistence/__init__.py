"""agent_armor's database layer: the models (schema.py) and the engine and sessions (database.py)."""
