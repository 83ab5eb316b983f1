"""Proving a history on a throwaway database before it is deployed: up, the models, down, up,
with sample rows in the tables, the template cache that spares what was proven, and the
report of it all."""
