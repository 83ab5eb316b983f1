"""The user's SQLAlchemy models, imported from ``[tool.migrail] metadata = "module:attribute"``."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from migrail.errors import FatalError

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from migrail.config import Config


def load_metadata(config: Config) -> MetaData | None:
    """Import the configured ``MetaData`` (``None`` when the project has no models).

    The project root and its ``src/`` folder are put on ``sys.path`` first, so the models import
    the same way whether or not the project is installed.
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
    for path in (config.root / "src", config.root):
        if path.is_dir() and str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        module = importlib.import_module(module_name)
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
