"""What measuring each revision's locks costs, on a small schema and on a large one.

The same 100 revisions (each adds a nullable column to one table, in a transaction of its own)
run against a schema of 20 tables and one of 2,000, with ``Observer.during`` timed inside each
revision. The measurement reads only the relations the revision locked, so its cost per revision
should not grow with the schema (ratio near 1); it is also shown against the revision's own work.
Run: python bench/observe.py [--small 20] [--large 2000] [--revisions 100]
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from migrail.postgres.ephemeral import ephemeral_database
from migrail.postgres.observe import Observer


def run(url: URL, tables: int, revisions: int) -> tuple[float, float]:
    """Seconds per revision: measuring it, and applying it (the baseline)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        for number in range(tables):
            connection.execute(text(f"CREATE TABLE t{number} (id int PRIMARY KEY, n int)"))
        connection.commit()
        observer = Observer(connection)
        measuring = applying = 0.0
        for number in range(revisions):
            start = time.perf_counter()
            connection.execute(text(f"ALTER TABLE t{number % tables} ADD COLUMN c{number} int"))
            applying += time.perf_counter() - start
            start = time.perf_counter()
            observer.during()
            measuring += time.perf_counter() - start
            connection.commit()
    engine.dispose()
    return measuring / revisions, applying / revisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--revisions", type=int, default=100)
    args = parser.parse_args()
    found = {}
    for tables in (args.small, args.large):
        with ephemeral_database() as url:
            found[tables] = run(url, tables, args.revisions)
        measuring, applying = found[tables]
        print(
            f"{tables:>6} tables: measuring {measuring * 1000:.1f} ms per revision, "
            f"{measuring / applying:.1f}x the revision's own statement"
        )
    ratio = found[args.large][0] / found[args.small][0]
    print(f"measuring at {args.large} tables / at {args.small} tables: {ratio:.2f}x")


if __name__ == "__main__":
    main()
