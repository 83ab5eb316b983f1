"""How much one throwaway database costs from each source, as ratios to a cold private cluster.

The baseline, measured in the same run, is what a run pays without help: initdb, start, CREATE
DATABASE, DROP DATABASE, stop. Each source is then timed for the same work; a warm cluster and a
given server pay only for the database. Run: python bench/ephemeral.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrail.postgres import cluster
from migrail.postgres.ephemeral import ADMIN_URL_ENV, WARM_ENV, Source, ephemeral_server
from migrail.postgres.warm import stop_warm_clusters


def one_run(source: Source) -> float:
    """Seconds for a whole run: get a server, create and drop one database, let the server go."""
    started = time.perf_counter()
    with ephemeral_server(source) as server, server.database():
        pass
    return time.perf_counter() - started


def median_run(source: Source, rounds: int) -> float:
    return statistics.median(one_run(source) for _ in range(rounds))


@contextmanager
def warm(source: Source) -> Iterator[None]:
    """A warm cluster of its own (in a private temporary directory), stopped afterwards."""
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="mb") as private_tmp:
        Path(private_tmp).chmod(0o755)  # the server account must pass through
        tempfile.tempdir = private_tmp
        os.environ[WARM_ENV] = "1"
        try:
            one_run(source)  # starts it
            yield
        finally:
            stop_warm_clusters()
            del os.environ[WARM_ENV]
            tempfile.tempdir = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    given = os.environ.pop(ADMIN_URL_ENV, None)
    sources: list[Source] = ["local"] if cluster.find_local_bindir() else []
    sources.append("embedded")
    baseline = median_run(sources[0], rounds)
    rows = [(f"cold private cluster ({sources[0]}, baseline)", baseline)]
    for source in sources:
        if source != sources[0]:
            rows.append((f"cold private cluster ({source})", median_run(source, rounds)))
        with warm(source):
            rows.append((f"warm cluster ({source})", median_run(source, rounds)))
    if given:
        os.environ[ADMIN_URL_ENV] = given
        rows.append((f"given server ({ADMIN_URL_ENV})", median_run("server", rounds)))
    print(f"one throwaway database, median of {rounds} runs")
    for name, seconds in rows:
        print(f"  {name:<42} {seconds * 1000:8.0f} ms   {seconds / baseline:5.2f}x baseline")


if __name__ == "__main__":
    main()
