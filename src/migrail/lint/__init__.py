"""Judging revisions and the history without applying them: squawk and migrail's own rules on
each revision's SQL, the history checks of the commit hooks, findings as data, and their
reports (terminal, JSON, SARIF, GitHub)."""
