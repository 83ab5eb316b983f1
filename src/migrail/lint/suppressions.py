"""``# migrail: allow RULE[, RULE] -- reason`` comments in revision files, next to the code.

A suppression on a line of its own covers the next line of code; at the end of a line, that line.
One placed before ``def upgrade`` covers the whole revision. Each must give a reason, and each must
suppress something: otherwise it is a finding of its own.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field

from migrail.history.revisions import ALLOW_COMMENT
from migrail.lint.sourcemap import function_named, op_call_nodes


@dataclass
class Suppression:
    rules: tuple[str, ...]
    reason: str
    line: int  # where the comment is
    covers: int | None  # the line it covers; None: the whole revision
    used: set[str] = field(default_factory=set)

    def applies(self, rule: str, line: int | None) -> bool:
        return rule in self.rules and (self.covers is None or line in (None, self.covers))


def read_suppressions(source: str, tree: ast.Module | None = None) -> list[Suppression]:
    """Every ``migrail: allow`` comment in a revision file's ``source`` (``tree``: its syntax)."""
    if "migrail:" not in source:
        return []  # most files have none, and tokenizing every file of a long history adds up
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError):
        return []
    code_lines = sorted({tok.start[0] for tok in tokens if tok.type not in _NOT_CODE})
    upgrade = function_named(tree, "upgrade") if tree is not None else None
    upgrade_line = (
        min([upgrade.lineno, *(d.lineno for d in upgrade.decorator_list)]) if upgrade else 0
    )
    calls = op_call_nodes(tree) if tree is not None else []
    found = []
    for tok in tokens:
        if tok.type != tokenize.COMMENT or not (match := ALLOW_COMMENT.match(tok.string)):
            continue
        line = tok.start[0]
        covers: int | None = line
        if tok.line[: tok.start[1]].strip() == "":  # a comment on a line of its own
            covers = next((code for code in code_lines if code > line), None)
            if covers is not None and covers <= upgrade_line:
                covers = None  # above ``def upgrade``: the whole revision
        if covers is not None:
            # Findings name the first line of a call; a comment on a later line of it counts.
            spanning = [
                call.lineno for call in calls if call.lineno <= covers <= (call.end_lineno or 0)
            ]
            covers = max(spanning, default=covers)
        rules = tuple(rule.strip() for rule in match["rules"].split(",") if rule.strip())
        found.append(Suppression(rules, (match["reason"] or "").strip(), line, covers))
    return found


_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
    tokenize.ENCODING,
}
