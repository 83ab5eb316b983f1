"""Helpers shared by migrail's tests: real databases, real processes, real files."""
