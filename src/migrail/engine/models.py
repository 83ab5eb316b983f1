"""The user's SQLAlchemy models, imported from ``[tool.migrail] metadata = "module:attribute"``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError
from migrail.engine.usercode import UserExit, user_code

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from migrail.core.config import Config


def load_metadata(config: Config, source: Path | None = None) -> MetaData | None:
    """Import the configured ``MetaData`` (``None`` when the project has no models).

    The project root (or ``source``, a copy of it such as the staged files) and its ``src/``
    folder are put on ``sys.path`` first, so the models import the same way whether or not the
    project is installed. From a copy, any earlier import of the package is forgotten first.
    """
    from sqlalchemy import MetaData

    if config.metadata is None:
        return None
    module_name, _, attribute = config.metadata.partition(":")
    if not module_name or not attribute:
        raise FatalError(
            f"[tool.migrail] metadata must look like 'package.module:metadata', "
            f"not {config.metadata!r}"
        )
    root = source or config.root
    importable(root)
    if source is not None:
        _forget(module_name.partition(".")[0])
    if config.flask_app is not None:
        # The models as `flask db migrate` sees them: the app factory imports them all.
        from migrail.engine.flask_app import make_app

        if source is not None:
            _forget(config.flask_app.partition(".")[0].partition(":")[0])
        make_app(root, config.flask_app)
    try:
        with user_code(root, may_connect=True):  # the application's code: it may reflect
            module = importlib.import_module(module_name)
    except UserExit as exc:
        call = f"importing the models module {module_name!r}: {exc.call}"
        raise UserExit(call, exc.where) from None
    except ImportError as exc:
        raise FatalError(
            f"cannot import the models module {module_name!r} ({exc})",
            hint="check [tool.migrail] metadata in pyproject.toml, "
            "and that the package is installed",
        ) from exc
    except Exception as exc:
        raise FatalError(
            f"importing the models module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    target: object = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
    if not isinstance(target, MetaData):
        # A declarative Base named instead of its MetaData is accepted as well.
        target = getattr(target, "metadata", target)
    if not isinstance(target, MetaData):
        raise FatalError(
            f"{config.metadata} is not a SQLAlchemy MetaData (found {type(target).__name__})",
            hint="point [tool.migrail] metadata at your models, e.g. 'app.models:Base.metadata'",
        )
    return target


def importable(root: Path) -> None:
    """Put the project ``root`` and its ``src/`` folder first on ``sys.path`` (as alembic.ini's
    ``prepend_sys_path = .`` does): the models, ``env.py`` and the revisions import the
    project's own modules the same way in every command, installed or not."""
    for path in (root, root / "src"):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.insert(0, str(path))


def _forget(package: str) -> None:
    for name in [name for name in sys.modules if name == package or name.startswith(f"{package}.")]:
        del sys.modules[name]
