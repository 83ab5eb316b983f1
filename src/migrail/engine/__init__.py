"""Alembic, driven in code: loading the history, applying it revision by revision, comparing
the models with a database, writing and rendering revisions, and running the project's code."""
