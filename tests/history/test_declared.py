"""A revision's header read as text (``graph.declared``) says what importing the file says, or
nothing: every way a file can give its module a header value other than one literal line at the
top makes it fall back to importing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from migrail.history.graph import declared

HEADER = "revision = '0002'\ndown_revision = '0001'\n"
NAMES = ("revision", "down_revision", "branch_labels", "depends_on")

READ_AS_TEXT = {
    "alembic's template": (
        '"""add x\n\nRevision ID: 0002\nRevises: 0001\n"""\n'
        "from typing import Sequence, Union\n\n"
        "# revision identifiers, used by Alembic.\n"
        "revision: str = '0002'\n"
        "down_revision: Union[str, Sequence[str], None] = '0001'\n"
        "branch_labels: Union[str, Sequence[str], None] = None\n"
        "depends_on: Union[str, Sequence[str], None] = None\n"
    ),
    "no branch_labels nor depends_on": HEADER,
    "a label and a dependency": HEADER + "branch_labels = ('feature',)\ndepends_on = '0000'\n",
    "a merge": "revision = '0003'\ndown_revision = ('0001', '0002')  # both\n",
}
IMPORTED = {
    "an indented assignment": HEADER + "if True:\n    down_revision = '0000'\n",
    "an augmented assignment": HEADER + "revision += 'x'\n",
    "unpacked": HEADER + "x, down_revision = 1, '0000'\n",
    "a star import": "from os.path import *\n" + HEADER,
    "globals()": HEADER + "globals()['branch_labels'] = ('x',)\n",
    "a for loop": HEADER + "for depends_on in ['0000']:\n    pass\n",
    "import as": HEADER + "import os as branch_labels\n",
    "a walrus": HEADER + "(depends_on := '0000')\n",
    "a module __getattr__": HEADER + "def __getattr__(name):\n    return ('x',)\n",
    "setattr": HEADER + "import sys\nsetattr(sys.modules[__name__], 'depends_on', '0000')\n",
    "exec": HEADER + 'exec("branch_" "labels = (\'x\',)")\n',
    "a computed parent": "revision = '0002'\ndown_revision = '00' + '01'\n",
    "written twice": HEADER + "revision = '0003'\n",
}


def _imported(tmp_path: Path, source: str) -> dict[str, object]:
    path = tmp_path / "revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("revision_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as Alembic's loader registers it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return {name: getattr(module, name, None) for name in NAMES}


@pytest.mark.parametrize("case", READ_AS_TEXT)
def test_a_literal_header_is_read_as_importing_reads_it(case: str, tmp_path: Path) -> None:
    source = READ_AS_TEXT[case]
    assert declared(source) == _imported(tmp_path, source)


@pytest.mark.parametrize("case", IMPORTED)
def test_anything_else_that_may_bind_a_header_value_means_importing(
    case: str, tmp_path: Path
) -> None:
    source = IMPORTED[case]
    assert declared(source) is None
    if case != "a module __getattr__":  # getattr with a default asks it too
        _imported(tmp_path, source)  # each is a real module, which importing would read


def test_a_name_mentioned_but_not_declared_is_left_to_importing() -> None:
    """Only a file that never names ``branch_labels`` gets ``None`` for it without importing."""
    found = declared(HEADER + "# branch_labels: none yet\n")
    assert found is not None and "branch_labels" not in found and found["depends_on"] is None
