"""The default ``migrate-staging`` on a branch that adds 2 revisions to a 200-revision history:
the step round trip of the branch's revisions, against the same run without it
(``--no-step-roundtrip``) and against stepping the whole history (``--step-roundtrip``).

A run on main first keeps main's head as a template; each timed run on the branch edits the
branch's first revision (a comment) beforehand, so every run starts from main's template and
proves the branch's revisions, as a developer's next run after an edit does. All run on one
warm cluster of the benchmark's own, as whole commands (process start included), timed in
turns (``histories.alternate``): median, min-max and peak RSS.
Run: python bench/branch_step.py [--revisions 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from histories import Command, Timing, alternate, machine_load, make_history, warm_cluster

BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--revisions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with warm_cluster() as (directory, _):
        root = directory / "project"
        root.mkdir()
        times = measure(root, options.revisions, options.rounds)
    print(
        f"a branch adding 2 revisions to {options.revisions}, {options.rounds} rounds in turns, "
        "one warm cluster (median, min-max):"
    )
    print(f"  {machine_load()}")
    plain = times["--no-step-roundtrip"]
    for name, timing in times.items():
        print(timing.row(name, plain))
    ratio = times["default (branch's 2 stepped)"].median / plain.median
    print(f"  the branch's step round trip costs {ratio:.2f}x the run without it")


def measure(root: Path, count: int, rounds: int) -> dict[str, Timing]:
    """The history on main (its last 2 revisions held back), a run there to keep main's
    templates, then the branch's runs."""
    make_history(root, count + 2)
    versions = root / "migrations" / "versions"
    added = sorted(versions.glob("*.py"))[-2:]
    held = {path: path.read_text() for path in added}
    for path in added:
        path.unlink()
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", "history"], cwd=root, check=True)
    command = [str(BIN / "migrail"), "migrate-staging"]
    # On main the models are ahead by 2 columns (exit 1): the run still proves, and keeps the
    # templates of, the history.
    subprocess.run([*command], cwd=root, check=False, capture_output=True)
    subprocess.run([*GIT, "checkout", "-q", "-b", "feature"], cwd=root, check=True)
    for path, text in held.items():
        path.write_text(text)
    edits = iter(range(10_000))

    def edit() -> None:
        """A new comment in the branch's first revision: its prefix and later are new."""
        first = added[0]
        first.write_text(held[first] + f"# edit {next(edits)}\n")

    timings = alternate(
        {
            "--no-step-roundtrip": Command([*command, "--no-step-roundtrip"], root, edit),
            "default (branch's 2 stepped)": Command(command, root, edit),
        },
        rounds,
    )
    everything = Command([*command, "--step-roundtrip", "--no-cache"], root, edit)
    timings["--step-roundtrip --no-cache (all stepped)"] = alternate({"": everything}, 1)[""]
    return timings


if __name__ == "__main__":
    main()
