"""The smallest edit that makes a project's ``env.py`` use migrail's connection when given.

An ``env.py`` written for plain Alembic builds its own engine and connects; under migrail it
must run on ``config.attributes["connection"]`` (Alembic's cookbook recipe, "Sharing a
Connection"). The edit is located with ``ast`` but made on the original text, line by line, so
comments and formatting survive; every changed line carries the marker, a second run changes
nothing, and without a given connection the original code runs: plain ``alembic`` still works.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

MARK = "# migrail-adopt"
_HELPER = f'''
import contextlib as _migrail_contextlib  {MARK}


@_migrail_contextlib.contextmanager  {MARK}
def _migrail_connection(connect):  {MARK}
    """migrail's connection (config.attributes["connection"]) if given, else connect()."""  {MARK}
    given = context.config.attributes.get("connection")  {MARK}
    if given is not None:  {MARK}
        yield given  {MARK}: the caller owns it; not closed here
    else:  {MARK}
        with connect() as connection:  {MARK}
            _migrail_guard(connection)  {MARK}
            yield connection  {MARK}


def _migrail_guard(connection):  {MARK}
    """Plain alembic may not change a database that says it is protected."""  {MARK}
    try:  {MARK}
        from migrail.alembic_env import refuse_protected  {MARK}
    except ImportError:  {MARK}: migrail is not installed where this runs
        return  {MARK}
    refuse_protected(context, connection)  {MARK}
'''

_Edit = tuple[int, int, list[str]]  # first and last line (1-based), and their replacement


class NoRule(Exception):
    """No known shape of connecting was found: env.py needs a look by hand."""


def honours_connection(source: str) -> bool:
    """env.py reads ``config.attributes["connection"]`` (``.get`` or subscript), or is migrail's
    own (it imports ``migrail.alembic_env``). A file that does not parse is left to Alembic."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True
    for node in ast.walk(tree):
        if _imports_run_migrations(node):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_attributes(node.func.value)
            and node.args
            and _is_connection(node.args[0])
        ):
            return True
        if (
            isinstance(node, ast.Subscript)
            and _is_attributes(node.value)
            and _is_connection(node.slice)
        ):
            return True
    return False


def imports_migrail(source: str) -> bool:
    """env.py is migrail's own: it imports ``run_migrations`` from ``migrail``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(_imports_run_migrations(node) for node in ast.walk(tree))


def _imports_run_migrations(node: ast.AST) -> bool:
    """``from migrail.alembic_env import run_migrations``: what makes an env.py migrail's own
    (an adopted one imports other things from migrail: its helper's guard)."""
    return (
        isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("migrail")
        and any(alias.name == "run_migrations" for alias in node.names)
    )


def _is_attributes(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "attributes"


def _is_connection(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == "connection"


def adopted(source: str) -> str | None:
    """``source`` edited to use the given connection; ``None`` when it already does.

    Raises ``NoRule`` when env.py connects in no shape known here.
    """
    if MARK in source or honours_connection(source):
        return None
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = _async_rule(tree, lines) or _with_rule(tree, lines) or _bare_connect_rule(tree, source)
    if not edits:
        raise NoRule("no `with E.connect() as c`, `c = E.connect()` or `run_sync(fn)` found")
    if any("_migrail_connection(" in "".join(new) for _, _, new in edits):
        line = _import_of_context(tree)
        if line is None:
            raise NoRule("env.py does not import `context` with `from alembic import context`")
        line = max(line, _end_of_leading_imports(tree))  # no import below code (E402)
        edits.append((line + 1, line, _HELPER.splitlines(keepends=True)))
    for first, last, new in sorted(edits, key=lambda edit: edit[0], reverse=True):
        lines[first - 1 : last] = new
    result = "".join(lines)
    ast.parse(result)
    return result


def _async_rule(tree: ast.Module, lines: list[str]) -> list[_Edit]:
    """Rule A: ``X.run_sync(FN)`` inside ``async def AF``; the statement that starts ``AF``
    (``asyncio.run(AF())`` and the like) runs ``FN(connection)`` instead when one is given."""
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef)]:
        calls = [
            call
            for call in ast.walk(function)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "run_sync"
            and call.args
            and isinstance(call.args[0], ast.Name)
        ]
        if not calls:
            continue
        name = calls[0].args[0].id  # type: ignore[attr-defined]
        inside = {id(node) for node in ast.walk(function)}
        for statement in _statements(tree):
            if id(statement) in inside or not isinstance(statement, ast.Expr):
                continue
            if any(isinstance(n, ast.Name) and n.id == function.name for n in ast.walk(statement)):
                end = statement.end_lineno or statement.lineno
                indent = lines[statement.lineno - 1][: statement.col_offset]
                old = lines[statement.lineno - 1 : end]
                given = 'context.config.attributes.get("connection")'
                new = [
                    f"{indent}if {given} is not None:  {MARK}\n",
                    f"{indent}    {name}({given})  {MARK}\n",
                    f"{indent}else:  {MARK}\n",
                    *["    " + line if line.strip() else line for line in old],
                ]
                return [(statement.lineno, end, new)]
    return []


def _with_rule(tree: ast.Module, lines: list[str]) -> list[_Edit]:
    """Rule B: ``with E.connect() as V:`` (or ``E.begin()``) whose body configures
    ``connection=V`` goes through ``_migrail_connection(E.connect)``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.With) or len(node.items) != 1:
            continue
        item = node.items[0]
        call = item.context_expr
        if (
            isinstance(call, ast.Call)
            and not call.args
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("connect", "begin")
            and isinstance(item.optional_vars, ast.Name)
            and _configures_with(node.body, item.optional_vars.id)
            and call.lineno == call.end_lineno
            and call.end_col_offset is not None
        ):
            line = lines[call.lineno - 1]
            callee = line[call.col_offset : call.end_col_offset][: -len("()")]
            rest = line[call.end_col_offset :].rstrip("\n")
            new = f"{line[: call.col_offset]}_migrail_connection({callee}){rest}  {MARK}\n"
            return [(call.lineno, call.lineno, [new])]
    return []


def _bare_connect_rule(tree: ast.Module, source: str) -> list[_Edit]:
    """Rule C: ``V = E.connect()`` becomes ``V = <given> or E.connect()``."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "connect"
            and not node.value.args
            and node.lineno == node.end_lineno
        ):
            engine = ast.get_source_segment(source, node.value.func.value)
            indent = lines[node.lineno - 1][: node.col_offset]
            new = (
                f"{indent}{node.targets[0].id} = "
                f'context.config.attributes.get("connection") or {engine}.connect()  {MARK}\n'
            )
            return [(node.lineno, node.lineno, [new])]
    return []


def _configures_with(body: list[ast.stmt], name: str) -> bool:
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "configure"
            and any(
                kw.arg == "connection" and isinstance(kw.value, ast.Name) and kw.value.id == name
                for kw in node.keywords
            )
        ):
            return True
    return False


def _end_of_leading_imports(tree: ast.Module) -> int:
    """The last line of the imports at the top of the module (after its docstring)."""
    end = 0
    for index, node in enumerate(tree.body):
        docstring = (
            index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        )
        if not (docstring or isinstance(node, (ast.Import, ast.ImportFrom))):
            break
        end = node.end_lineno or end
    return end


def _import_of_context(tree: ast.Module) -> int | None:
    for node in tree.body:
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "alembic"
            and any(alias.name == "context" and alias.asname is None for alias in node.names)
        ):
            return node.end_lineno
    return None


def _statements(tree: ast.AST) -> Iterator[ast.stmt]:
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            for statement in getattr(node, field, None) or []:
                if isinstance(statement, ast.stmt):
                    yield statement


def target_metadata(source: str) -> str | None:
    """``module:attribute`` of the MetaData env.py hands to Alembic, when it says so plainly:
    ``target_metadata = X.metadata`` (or ``Base.metadata``) with ``X``/``Base`` imported, or
    ``from app.models import metadata as target_metadata``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    imported: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attribute)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                imported[alias.asname or alias.name] = (alias.name, None)
    assigned = False
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "target_metadata" for t in node.targets)
        ):
            continue
        assigned = True
        value = node.value
        if isinstance(value, ast.Name) and value.id in imported:
            module, attribute = imported[value.id]
            return f"{module}:{attribute}" if attribute else None
        if (
            isinstance(value, ast.Attribute)
            and isinstance(value.value, ast.Name)
            and value.value.id in imported
        ):
            module, attribute = imported[value.value.id]
            path = f"{attribute}.{value.attr}" if attribute else value.attr
            return f"{module}:{path}"
    module, attribute = imported.get("target_metadata", ("", None))  # imported under that name
    return f"{module}:{attribute}" if module and attribute and not assigned else None
