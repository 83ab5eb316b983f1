"""The order the template cache keys a history in is the order Alembic applies it from base.

A template holds a prefix of ``Executor.revisions()`` (``ordered_revisions``), and a run served
from it applies exactly the rest in that order, while a run with ``--no-cache`` lets Alembic
upgrade to heads: the two give one answer only if the orders are one. Alembic computes both
(``walk_revisions`` reversed, ``_upgrade_revs`` from nothing); this holds it to that on
histories with branches, merges of merges and ``depends_on``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from migrail.history.revisions import ordered_revisions, upgrade_plan


def _write(folder: Path, revision: str, down: tuple[str, ...], depends: tuple[str, ...]) -> None:
    parent = None if not down else down[0] if len(down) == 1 else down
    (folder / f"{revision}_x.py").write_text(
        f"revision = {revision!r}\ndown_revision = {parent!r}\nbranch_labels = None\n"
        f"depends_on = {depends or None!r}\n\n\ndef upgrade():\n    pass\n\n\n"
        "def downgrade():\n    pass\n"
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_cache_order_is_alembics_upgrade_order(seed: int, tmp_path: Path) -> None:
    """Random histories: each revision follows one or two open ends (a branch or a merge),
    sometimes depends on an older one; the open ends are merged at last, into one head."""
    chance = random.Random(seed)
    versions = tmp_path / "versions"
    versions.mkdir()
    (tmp_path / "script.py.mako").write_text("")
    ids = [f"{chance.getrandbits(48):012x}" for _ in range(60)]
    _write(versions, ids[0], (), ())
    ends, made = [ids[0]], [ids[0]]
    for revision in ids[1:]:
        parents = tuple(chance.sample(ends, min(len(ends), chance.choice((1, 1, 1, 2)))))
        if chance.random() < 0.3:  # a branch: the parent stays an open end
            parents = (chance.choice(made),)
        depends = (chance.choice(made),) if chance.random() < 0.1 else ()
        depends = tuple(d for d in depends if d not in parents)
        _write(versions, revision, parents, depends)
        ends = [end for end in ends if end not in parents] + [revision]
        made.append(revision)
    if len(ends) > 1:
        _write(versions, "f" * 12, tuple(ends), ())
    config = Config()
    config.set_main_option("script_location", str(tmp_path))
    script = ScriptDirectory.from_config(config)
    walked = [r.revision for r in ordered_revisions(script)]
    applied = [r.revision for r in upgrade_plan(script, (), "heads")]
    assert len(set(walked)) == len(walked) == len(made) + (len(ends) > 1)
    assert walked == applied
