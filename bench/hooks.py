"""The database-free commit hooks against one plain ``alembic heads``, on generated revisions.

pre-commit runs each hook as a process of its own, so the three are timed as three commands
(``migrail check --staged --only single-head``, ``immutable``, ``schema-sync``), summed, and
compared with ``alembic heads`` on the same history, measured in the same run (goal: below 1.0);
``check --staged`` runs all four checks (lint included) in one process. schema-sync renders the
models only when their files differ from those the snapshot at head was rendered from (a
commit that changes models without changing the schema); the last line times that case. All
run in turns, median with its min and max.
``--before PATH`` times ``check --staged`` of another checkout's src/ alongside.
Run: python bench/hooks.py [--revisions 200] [--rounds 5] [--before PATH]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from histories import (
    Command,
    alternate,
    commit_history,
    machine_load,
    make_history,
    with_before,
)

BIN = Path(sys.executable).parent
HOOKS = ("single-head", "immutable", "schema-sync")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout's src/, timed alongside")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="migrail-bench-") as directory:
        root = Path(directory)
        make_history(root, options.revisions)
        migrail = str(BIN / "migrail")
        commit_history(root, BIN / "migrail", ["snapshot"], ["sum", "--update"])
        models = root / "models.py"
        committed = models.read_text()

        def as_committed() -> None:
            models.write_text(committed)
            subprocess.run(["git", "add", "models.py"], cwd=root, check=True)

        def touch_models() -> None:  # a change to the files that leaves the schema as it was
            models.write_text(committed + "# touched\n")
            subprocess.run(["git", "add", "models.py"], cwd=root, check=True)

        check = [migrail, "check", "--staged"]
        commands = {"alembic heads": Command([str(BIN / "alembic"), "heads"], root, as_committed)}
        for hook in HOOKS:
            commands[f"hook {hook}"] = Command([*check, "--only", hook], root, as_committed)
        commands["check --staged (all four checks)"] = Command(check, root, as_committed)
        commands["... schema-sync, model files changed"] = Command(
            [*check, "--only", "schema-sync"], root, touch_models
        )
        all_four = "check --staged (all four checks)"
        timings = alternate(with_before(commands, options.before, all_four), options.rounds)
    print(f"{options.revisions} revisions, {options.rounds} rounds in turns ({machine_load()})")
    print(f"  {'':<44} {'median (min-max)':>20}  ratio  peak RSS")
    alembic = timings["alembic heads"]
    for name, timing in timings.items():
        print(timing.row(name, alembic))
    total = sum(timings[f"hook {hook}"].median for hook in HOOKS)
    print(
        f"  {'the three hooks together':<36} {total:6.2f} s  {total / alembic.median:5.2f}x  "
        "(goal < 1.0x)"
    )
    cold = timings["... schema-sync, model files changed"].median
    together_cold = total - timings["hook schema-sync"].median + cold
    print(
        f"  {'... model files changed':<36} {together_cold:6.2f} s  "
        f"{together_cold / alembic.median:5.2f}x  (schema-sync renders them)"
    )


if __name__ == "__main__":
    main()
