"""``migrate-staging --step-roundtrip`` on 200 generated revisions with two merges, against the
same run without it (``--no-cache``, the whole history proven once up, down and up).

The step round trip undoes and redoes every revision right after its upgrade and compares the
schema before and after, so it costs more than the plain proof; this says how much. Both run on
one warm cluster of the benchmark's own (started first), as whole commands (process start
included), in alternating pairs (plain, step; plain, step...) so that a slow moment of the
machine falls on both; the ratio is of the medians, with each side's min and max. Each
median divided by the number of revisions is the cost per revision: run at two lengths (200,
1,000), it says whether the cost grows with the history's length alone (linear) or faster.
``--before PATH`` times the step round trip of another checkout's src/ alongside.
Run: python bench/step_roundtrip.py [--revisions 200] [--merges 2] [--width 200] [--rounds 5]
[--before PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from histories import Command, alternate, machine_load, make_history, warm_cluster, with_before

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--merges", type=int, default=2)
    # Each revision's column is added, dropped and added again: two of a table's 1,600 column
    # numbers (dropped ones count), so one table cannot take 1,000 such revisions.
    parser.add_argument("--width", type=int, default=200, help="columns a table at most")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    options = parser.parse_args()
    with warm_cluster() as (directory, _):
        root = directory / "project"
        root.mkdir()
        make_history(root, options.revisions, options.merges, options.width)
        command = [str(BIN / "migrail"), "migrate-staging", "--no-cache"]
        step_name = "... --step-roundtrip"
        commands = {
            "migrate-staging --no-cache": Command(command, root),
            step_name: Command([*command, "--step-roundtrip"], root),
        }
        timings = alternate(with_before(commands, options.before, step_name), options.rounds)
    plain, step = timings["migrate-staging --no-cache"], timings[step_name]
    print(
        f"{options.revisions} revisions with {options.merges} merges, {options.width} columns a "
        f"table at most, {options.rounds} rounds in turns, one warm cluster ({machine_load()})"
    )
    print(f"  {'':<44} {'median (min-max)':>20}  ratio  peak RSS")
    for name, timing in timings.items():
        print(timing.row(name, plain))
    print(f"  the step round trip costs {step.median / plain.median:.2f}x the plain proof")
    per_revision = ", ".join(
        f"{name} {timing.median / options.revisions * 1000:.1f} ms"
        for name, timing in timings.items()
    )
    print(f"  per revision: {per_revision}")


if __name__ == "__main__":
    main()
