"""migrail's own rules, for what squawk cannot see in SQL; each returns findings as data."""
