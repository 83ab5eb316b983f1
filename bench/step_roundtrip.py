"""``migrate-staging --step-roundtrip`` on 200 generated revisions with two merges, against the
same run without it (``--no-cache``, the whole history proven once up, down and up).

The step round trip undoes and redoes every revision right after its upgrade and compares the
schema before and after, so it costs more than the plain proof; this says how much. Both run on
one warm cluster of the benchmark's own (started first), as whole commands (process start
included), in alternating pairs (plain, step; plain, step...) so that a slow moment of the
machine falls on both; the ratio is of the medians, with each side's min and max.
Run: python bench/step_roundtrip.py [--revisions 200] [--merges 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from histories import make_history, warm_cluster

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--merges", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with warm_cluster() as (directory, _):
        root = directory / "project"
        root.mkdir()
        make_history(root, options.revisions, options.merges)
        plain, step = measure(root, options.rounds)
    print(
        f"{options.revisions} revisions with {options.merges} merges, {options.rounds} "
        "alternating pairs, one warm cluster (median, min-max)"
    )
    for name, times in (("migrate-staging --no-cache", plain), ("... --step-roundtrip", step)):
        print(
            f"  {name:<30} {statistics.median(times):6.2f} s  ({min(times):.2f}-{max(times):.2f} s)"
        )
    ratio = statistics.median(step) / statistics.median(plain)
    print(f"  the step round trip costs {ratio:.2f}x the plain proof")


def measure(root: Path, rounds: int) -> tuple[list[float], list[float]]:
    """Wall times of the plain and the stepwise run, alternating, after one untimed of each."""
    command = [str(BIN / "migrail"), "migrate-staging", "--no-cache"]
    plain: list[float] = []
    step: list[float] = []
    once(command, root)  # warms the file cache, and the cluster
    once([*command, "--step-roundtrip"], root)
    for _ in range(rounds):
        plain.append(once(command, root))
        step.append(once([*command, "--step-roundtrip"], root))
    return plain, step


def once(command: list[str], root: Path) -> float:
    """One whole command's wall time; it must prove the history (exit 0): a failed run would
    stop early and pass for a fast one."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, check=False, capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr.decode()[-800:]}")
    return seconds


if __name__ == "__main__":
    main()
