"""``migrail import``: a legacy SQLite database loaded into the schema the migrations built.

source (the SQLite file, read-only) -> mapping (import.toml) -> matching (against the target's
catalog, reported before anything is written) -> conversions (per column, rejecting rather than
coercing) -> load (COPY, parents first, one transaction) -> verify (counts and checksums).
"""
