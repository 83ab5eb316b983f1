"""``# migrail: allow RULE[, RULE] -- reason`` comments in revision files, next to the code.

A suppression on a line of its own covers the next line of code; at the end of a line, that line.
One placed before ``def upgrade`` covers the whole revision. Each must give a reason, and each must
suppress something: otherwise it is a finding of its own.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

_ALLOW = re.compile(
    r"#\s*migrail:\s*allow\s+(?P<rules>[\w\-,\s]+?)\s*(?:--\s*(?P<reason>.*?))?\s*$"
)


@dataclass
class Suppression:
    rules: tuple[str, ...]
    reason: str
    line: int  # where the comment is
    covers: int | None  # the line it covers; None: the whole revision
    used: set[str] = field(default_factory=set)

    def applies(self, rule: str, line: int | None) -> bool:
        return rule in self.rules and (self.covers is None or line in (None, self.covers))


def read_suppressions(source: str) -> list[Suppression]:
    """Every ``migrail: allow`` comment in a revision file's ``source``."""
    if "migrail:" not in source:
        return []  # most files have none, and tokenizing every file of a long history adds up
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError):
        return []
    code_lines = sorted({tok.start[0] for tok in tokens if tok.type not in _NOT_CODE})
    first_def = next(
        (tok.start[0] for tok in tokens if tok.type == tokenize.NAME and tok.string == "def"), None
    )
    found = []
    for tok in tokens:
        if tok.type != tokenize.COMMENT or not (match := _ALLOW.match(tok.string)):
            continue
        line = tok.start[0]
        own_line = tok.line[: tok.start[1]].strip() == ""
        covers: int | None = line
        if own_line:
            covers = next((code for code in code_lines if code > line), None)
            if first_def is not None and covers is not None and covers <= first_def:
                covers = None  # before the functions: the whole revision
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
