"""The package tree reads as the architecture, and imports run one way: down the layers.

A lower package never imports a higher one, not even inside a function or for type checking:
``core`` is used by all, ``commands`` by ``main`` alone. See docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "migrail"
# Lowest first: each may import its own package and those before it.
LAYERS = (
    "core",
    "postgres",
    "history",
    "engine",
    "lint",
    "staging",
    "release",
    "sqlite_import",
    "studio",
    "commands",
    "main",
)
# Top-level modules and the layer they belong to; the package's own __init__ holds the version.
# alembic_env is the name users' env.py files import (``from migrail.alembic_env import
# run_migrations``): kept stable at the top, it hands over to the engine.
TOP_MODULES = {"__init__": "core", "__main__": "main", "main": "main", "alembic_env": "engine"}
MAX_TOP_LEVEL_ENTRIES = 15


def _layer(parts: tuple[str, ...]) -> str | None:
    """The layer of ``migrail.<parts>``; None for a top-level name no layer claims."""
    if not parts:
        return "core"  # ``import migrail``: the package's __init__, its version
    return parts[0] if parts[0] in LAYERS else TOP_MODULES.get(parts[0])


def _module_parts(path: Path) -> tuple[str, ...]:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def _package(path: Path) -> tuple[str, ...]:
    """The package a module is in (an ``__init__.py``: its own), as parts under migrail."""
    return _module_parts(path) if path.name == "__init__.py" else _module_parts(path)[:-1]


def _imported(source: str, package: tuple[str, ...]) -> list[tuple[int, tuple[str, ...]]]:
    """Every migrail module a module of ``package`` imports (as parts under migrail), with its
    line: at the top, inside functions, under TYPE_CHECKING, relative or not."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
            found += [(node.lineno, tuple(name[1:])) for name in names if name[0] == "migrail"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package, up level - 1
                base = package[: len(package) - node.level + 1]
                module = (*base, *(node.module.split(".") if node.module else ()))
            elif node.module and node.module.split(".")[0] == "migrail":
                module = tuple(node.module.split(".")[1:])
            else:
                continue
            if module:
                found.append((node.lineno, module))
            else:  # from migrail import x: x is a package, a module, or the version
                found += [(node.lineno, (alias.name,)) for alias in node.names]
    return found


def test_imports_run_down_the_layers_only() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE.parent))
        layer = _layer(_module_parts(path))
        if layer is None:
            wrong.append(f"{where}: in no layer; put it in one of {', '.join(LAYERS)}")
            continue
        for line, target in _imported(path.read_text(encoding="utf-8"), _package(path)):
            target_layer = _layer(target) or "core"  # e.g. from migrail import __version__
            if LAYERS.index(target_layer) > LAYERS.index(layer):
                wrong.append(
                    f"{where}:{line}: {layer} imports migrail.{'.'.join(target)} "
                    f"({target_layer} is above it)"
                )
    assert wrong == []


def test_the_top_level_holds_the_layers_and_little_else() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_TOP_LEVEL_ENTRIES, entries
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS) - {"main"}


def test_the_layer_check_sees_every_kind_of_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import migrail.engine.executor\n"
        "from migrail import release, __version__\n"
        "from migrail.postgres.database import connect\n"
        "if TYPE_CHECKING:\n"
        "    from migrail.lint.findings import Finding\n"
        "def f():\n"
        "    from ..commands import check\n"
        "    from . import urls\n"
    )
    assert _imported(source, ("core",)) == [
        (2, ("engine", "executor")),
        (3, ("release",)),
        (3, ("__version__",)),
        (4, ("postgres", "database")),
        (6, ("lint", "findings")),
        (8, ("commands",)),
        (9, ("core",)),
    ]
