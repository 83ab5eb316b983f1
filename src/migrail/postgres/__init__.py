"""PostgreSQL itself: servers and throwaway databases, connections, catalog reads, lock
observation, and what a database says about itself (its identity, migrail's bookkeeping)."""
