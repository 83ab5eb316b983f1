"""agent_armor: the example service whose schema migrail manages."""
