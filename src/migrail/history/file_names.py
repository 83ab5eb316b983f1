"""Revision file names as the project writes them: its Alembic ``file_template``, read the way
Alembic reads it, and whether a file's name can be the one that template gives its revision.

Projects adopted from plain Alembic often name files by date
(``2024_01_02_0304-1975ea83b712_create_account.py``); migrail's own ``<rev>_<slug>`` names, and
a bare ``<rev>.py``, are accepted whatever the template says.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migrail.core.errors import FatalError

if TYPE_CHECKING:
    from migrail.core.config import Config

DEFAULT_TEMPLATE = "%(rev)s_%(slug)s"
_FIELD = re.compile(r"%\((\w+)\)([#0\- +]*)(\d*)(?:\.(\d+))?([sdi])|%%")
_DATE = frozenset({"year", "month", "day", "hour", "minute", "second", "epoch"})


@dataclass(frozen=True)
class FileTemplate:
    """The project's ``file_template`` (``%%`` already unescaped) and the file that set it."""

    template: str
    source: Path

    @property
    def names_revisions(self) -> bool:
        """Whether a name made from it holds the revision id, so that it can be checked."""
        return stem_pattern(self.template, "x") is not None


def project_template(config: Config) -> FileTemplate | None:
    """The ``file_template`` of the project's ``alembic.ini`` (in its root, beside the
    migrations directory, or inside it as ``flask db init`` puts it) or of ``[tool.alembic]``
    in its ``pyproject.toml``; None without one."""
    from alembic.config import Config as AlembicConfig

    pyproject = config.root / "pyproject.toml"
    candidates = [
        config.root / "alembic.ini",
        config.migrations_dir.parent / "alembic.ini",
        config.migrations_dir / "alembic.ini",
    ]
    for ini in [path for path in dict.fromkeys(candidates) if path.is_file()] + [None]:
        alembic = AlembicConfig(file_=ini, toml_file=pyproject if pyproject.is_file() else None)
        try:
            template = alembic.get_alembic_option("file_template")
        except Exception as exc:  # configparser's and tomllib's errors, worded by them
            where = ini or pyproject
            raise FatalError(
                f"cannot read file_template from {config.shown(where)}: {exc}",
                hint="fix the file so that Alembic can read it",
            ) from None
        if isinstance(template, str) and template.strip():
            source = (
                ini
                if ini is not None
                and alembic.file_config.has_option(alembic.config_ini_section, "file_template")
                else pyproject
            )
            return FileTemplate(template.strip(), source)
    return None


def stem_pattern(template: str, rev: str) -> re.Pattern[str] | None:
    """The file stems (relative to the versions directory, without ``.py``) ``template`` can
    give revision ``rev``, the id in group ``rev``; None when the template has no ``%(rev)s``."""
    out: list[str] = []
    pos, has_rev = 0, False
    for match in _FIELD.finditer(template):
        out.append(re.escape(template[pos : match.start()]))
        pos = match.end()
        if match.group(0) == "%%":
            out.append("%")
            continue
        name, _flags, width, precision, _conversion = match.groups()
        if name == "rev":
            out.append(f"(?P<rev>{re.escape(rev)})" if not has_rev else re.escape(rev))
            has_rev = True
        elif name == "slug":  # lower-case words joined by "_", ending "_" when truncated
            out.append(r"\w*")
        elif name in _DATE:  # %(month).2d and %(month)02d both pad to two digits
            digits = max(int(width or 0), int(precision or 0))
            out.append(rf"\d{{{digits},}}" if digits else r"\d+")
        else:
            raise FatalError(
                f"file_template has %({name}), which Alembic does not fill",
                hint="use rev, slug, epoch, year, month, day, hour, minute and second",
            )
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out)) if has_rev else None


def relative_stem(path: Path | str, versions_dir: Path) -> str:
    """``2024/01/02_0304_abc_x`` for ``versions/2024/01/02_0304_abc_x.py``: what templates make.

    ``path.with_suffix("").relative_to(versions_dir)``, worked out on the strings (``path``
    may be Alembic's, a string): lint asks it of every revision of a long history."""
    from migrail.history.revision_files import relative_posix
    from migrail.history.revisions import file_stem

    inside = relative_posix(path, versions_dir)
    if inside is None:
        return file_stem(os.path.split(path)[1])
    folders, _, name = inside.rpartition("/")
    return f"{folders}/{file_stem(name)}" if folders else file_stem(name)


def name_fits(stem: str, rev: str, template: str | None) -> bool:
    """Whether ``stem`` (see ``relative_stem``) names revision ``rev``: migrail's ``<rev>_<slug>``
    or ``<rev>``, or what ``template`` gives it, folders and all or (a file moved by hand into
    a folder per release, say) the file name alone."""
    base = stem.rsplit("/", 1)[-1]
    if base == rev or base.startswith(f"{rev}_"):
        return True
    pattern = stem_pattern(template, rev) if template else None
    return pattern is not None and any(pattern.fullmatch(name) for name in (stem, base))


def orphan_sql(sql_dir: Path, rev: str, template: str | None) -> list[Path]:
    """The SQL files in ``sql_dir`` numbered like revision ``rev`` but not its own: left by a
    revision that was deleted. A new revision ``rev``'s SQL would go over them or beside them."""
    return sorted(
        path
        for path in sql_dir.glob("*.sql")
        if name_fits(path.stem, rev, template) and path.stem != rev
    )


def with_id(stem: str, rev: str | None) -> str:
    """``stem`` as output names a revision: with ``(rev)`` after it unless the name already holds
    the id (``0002_add_x``, ``2024_01_02_0304-1975ea83b712_x``). A name made by a date-based
    template (``2024-11-07-1502_remove_x``) does not, and the id is what people search for."""
    if not rev or _holds(stem, rev):
        return stem
    return f"{stem} ({rev})"


def _holds(stem: str, rev: str) -> bool:
    """Whether ``rev`` stands in ``stem`` as a word of its own (no ASCII letter or digit against
    it on either side). By hand, not by a pattern made for each id: output names every revision
    in each phase, and a thousand ids are more patterns than ``re`` keeps compiled."""
    at = stem.find(rev)
    while at != -1:
        end = at + len(rev)
        if not _alnum(stem[at - 1 : at]) and not _alnum(stem[end : end + 1]):
            return True
        at = stem.find(rev, at + 1)
    return False


def _alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def renamed(path: Path, versions_dir: Path, old: str, new: str, template: str | None) -> Path:
    """``path`` with revision ``old``'s id in its name replaced by ``new``, wherever the name
    holds it; a name that does not hold it gets ``<new>_`` in front."""
    if old and new == old:
        return path
    stem = relative_stem(path, versions_dir)
    base = path.stem
    if old and (base == old or base.startswith(f"{old}_")):
        return path.with_name(f"{new}{base[len(old) :]}.py")
    pattern = stem_pattern(template, old) if template and old else None
    # The template may put directories before the name, or the file may sit in a folder the
    # template does not name (moved there by hand): the name alone then.
    for named, offset in ((stem, len(stem) - len(base)), (base, 0)):
        found = pattern.fullmatch(named) if pattern is not None else None
        if found is not None and found.start("rev") >= offset:
            start, end = found.span("rev")
            return path.with_name(f"{base[: start - offset]}{new}{base[end - offset :]}.py")
    return path.with_name(f"{new}_{base}.py")
