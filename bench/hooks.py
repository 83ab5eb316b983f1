"""The database-free commit hooks against one plain ``alembic heads``, on 200 revisions.

pre-commit runs each hook as a process of its own, so the three are timed as three commands
(``migrail check --staged --only single-head``, ``immutable``, ``schema-sync``), summed, and
compared with ``alembic heads`` on the same history, measured in the same run (goal: below 1.0).
schema-sync renders the models only when their files differ from those the snapshot at head was
rendered from (a commit that changes models without changing the schema); the last line times
that case.
Run: python bench/hooks.py [--revisions 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from histories import commit_history, make_history, timed

BIN = Path(sys.executable).parent
HOOKS = ("single-head", "immutable", "schema-sync")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="migrail-bench-") as directory:
        root = Path(directory)
        make_history(root, options.revisions)
        migrail = str(BIN / "migrail")
        commit_history(root, BIN / "migrail", ["snapshot"], ["sum", "--update"])

        alembic = timed([str(BIN / "alembic"), "heads"], root, options.rounds)
        hooks = {
            hook: timed(
                [migrail, "check", "--staged", "--only", hook], root, options.rounds, ok=(0,)
            )
            for hook in HOOKS
        }
        models = root / "models.py"

        def touch_models() -> None:  # a change to the files that leaves the schema as it was
            models.write_text(models.read_text() + "# touched\n")
            subprocess.run(["git", "add", "models.py"], cwd=root, check=True)

        cold = timed(
            [migrail, "check", "--staged", "--only", "schema-sync"],
            root,
            options.rounds,
            before=touch_models,
            ok=(0,),
        )
    total = sum(hooks.values())
    print(f"{options.revisions} revisions, median of {options.rounds} runs")
    print(f"  {'alembic heads':<34} {alembic:6.2f} s  1.00x  (baseline)")
    for hook, seconds in hooks.items():
        print(f"  {'hook ' + hook:<34} {seconds:6.2f} s  {seconds / alembic:5.2f}x")
    print(
        f"  {'the three hooks together':<34} {total:6.2f} s  {total / alembic:5.2f}x  (goal < 1.0x)"
    )
    together_cold = total - hooks["schema-sync"] + cold
    print(
        f"  {'... model files changed':<34} {together_cold:6.2f} s  "
        f"{together_cold / alembic:5.2f}x  (schema-sync renders them: {cold:.2f} s)"
    )


if __name__ == "__main__":
    main()
