"""Findings rendered for people (a terminal report by revision) and for CI (JSON, GitHub, SARIF).

Every format comes from the same ``LintReport``; paths are relative to the project root.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrail import __version__
from migrail.history.revisions import display_name

if TYPE_CHECKING:
    from rich.console import Console

    from migrail.lint.findings import Finding
    from migrail.lint.linter import LintReport

FORMATS = ("terminal", "json", "github", "sarif")


def terminal(console: Console, report: LintReport, root: Path) -> None:
    """Findings grouped by revision, each with its rule, severity, line, help and link."""
    from rich.markup import escape

    by_revision: dict[str | None, list[Finding]] = {}
    for finding in report.findings:
        by_revision.setdefault(finding.revision, []).append(finding)
    for revision in report.revisions:
        if findings := by_revision.get(revision.revision):
            origin = report.origins.get(revision.revision)
            note = f" (SQL {origin})" if origin and origin != "rendered offline" else ""
            console.print(f"[bold]{escape(display_name(revision))}[/bold]{escape(note)}")
            _findings(console, findings, root)
    if others := by_revision.get(None):
        console.print("[bold]other files[/bold]")
        _findings(console, others, root)
    console.print(_summary(report))


def _findings(console: Console, findings: list[Finding], root: Path) -> None:
    from collections import Counter

    from rich.markup import escape

    # Where one rule fires more than once on one line, each says what it points at.
    repeated = Counter((finding.rule, finding.line) for finding in findings)
    for finding in findings:
        colour = "red" if finding.failing else "dim" if finding.severity == "baseline" else "yellow"
        where = _relative(finding.path, root) + (f":{finding.line}" if finding.line else "")
        severity = f"[{colour}]{finding.severity}[/{colour}]"
        console.print(f"  {severity} {escape(finding.rule)}  {escape(where)}")
        console.print(f"    {escape(finding.message)}")
        if finding.context.get("statement"):
            console.print(f"    sql: {escape(_one_line(finding.context['statement']))}")
        if finding.context.get("at") and repeated[(finding.rule, finding.line)] > 1:
            console.print(f"    at: {escape(finding.context['at'])}")
        if finding.help:
            console.print(f"    help: {escape(finding.help)}")
        if finding.url:
            console.print(f"    see: {escape(finding.url)}")


def as_json(report: LintReport, root: Path) -> str:
    """One object per finding, with the revision file as the location."""
    items = [
        {
            "rule": finding.rule,
            "severity": finding.severity,
            "message": finding.message,
            "revision": finding.revision,
            "path": _relative(finding.path, root),
            "line": finding.line,
            "help": finding.help,
            "url": finding.url,
            "source": finding.source,
            "sql_from": report.origins.get(finding.revision or ""),
            "context": finding.context,
        }
        for finding in report.findings
    ]
    return json.dumps(items, indent=2)


def as_github(report: LintReport, root: Path) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the revision file."""
    lines = []
    for finding in report.findings:
        level = "error" if finding.failing else "warning"
        properties = f"file={_escape_property(_relative(finding.path, root))}"
        if finding.line:
            properties += f",line={finding.line}"
        properties += f",title={_escape_property(finding.rule)}"
        text = finding.message + (f" ({finding.help})" if finding.help else "")
        lines.append(f"::{level} {properties}::{_escape_data(text)}")
    return "\n".join(lines)


def as_sarif(report: LintReport, root: Path) -> str:
    """SARIF 2.1.0, for code-scanning dashboards."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in report.findings:
        rule: dict[str, Any] = {"id": finding.rule, "properties": {"source": finding.source}}
        if finding.url and finding.url.startswith("https://"):
            rule["helpUri"] = finding.url  # SARIF wants an absolute URI; ours live in the repo
        elif finding.url:
            rule["help"] = {"text": f"see {finding.url}"}
        rules.setdefault(finding.rule, rule)
        location: dict[str, Any] = {"artifactLocation": {"uri": _relative(finding.path, root)}}
        if finding.line:
            location["region"] = {"startLine": finding.line}
        results.append(
            {
                "ruleId": finding.rule,
                "level": "error" if finding.failing else "warning",
                "message": {"text": finding.message},
                "locations": [{"physicalLocation": location}],
            }
        )
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "migrail",
                        "version": __version__,
                        "informationUri": "https://squawkhq.com/docs/rules",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def _summary(report: LintReport) -> str:
    errors = len(report.failing)
    baseline = sum(finding.severity == "baseline" for finding in report.findings)
    warnings = len(report.findings) - errors - baseline
    linted = len(report.revisions)
    if not report.findings:
        return f"[green]\\[✓][/green] {linted} revision(s) linted: no findings"
    released = (
        f", and {baseline} in released revisions (the baseline: shown, not failing)"
        if baseline
        else ""
    )
    return f"{errors} error(s), {warnings} warning(s) in {linted} revision(s) linted{released}"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _one_line(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
