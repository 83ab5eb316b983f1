"""A database at the history's head, for autogenerate to compare the models with, in a time that
does not grow with the history.

On a server that outlives the run (the warm cluster, ``MIGRAIL_ADMIN_URL``'s), the template cache
(``staging.templates``) may already hold the history, or most of it: the database is then a copy
of the longest prefix found (``CREATE DATABASE ... TEMPLATE``), and only the revisions after it
are applied. Two kinds of template serve: migrate-staging's (the keys a default run gives them:
with sample rows, which autogenerate does not look at, since it compares the schema only) and
generate's own. Generate keeps one at the head it replayed to, so the next run copies it; its
keys are derived from migrate-staging's and tagged, so that migrate-staging, which trusts only
what it proved itself (round trip, locks measured), never starts from one. The lookup drops
nothing: a template of another kind is not stale for being absent from generate's keys.
A migrate-staging run drops generate's templates as it drops any key it does not hold
(``TemplateCache.longest``), and the next generate keeps one again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrail.engine.executor import Executor
    from migrail.postgres.ephemeral import Server
    from migrail.staging.templates import Template, TemplateCache

# Mixed into migrate-staging's keys to make generate's: a schema replayed, not proven.
_GENERATE_TAG = b"migrail generate: schema only, not proven"


@dataclass(frozen=True)
class Start:
    """Where the database at head begins: a copy of ``template`` (the prefix up to
    ``position``), or an empty database (``template`` is ``None``, ``position`` 0)."""

    template: str | None
    position: int
    revision: str | None  # the revision the copy is at


@dataclass
class HeadTemplates:
    """The templates that can start a database at head, and generate's own, to keep one."""

    staging: TemplateCache
    ours: TemplateCache

    def start(self) -> Start:
        """The longest prefix of the history either kind holds (none: an empty database). The
        variables its run read count as read by this one, which runs none of what read them:
        an answer this run records (a template, a receipt) stands on them too."""
        from migrail.core.environ_reads import inherited, inherited_sources

        present = _usable(self.staging)
        for position in range(len(self.staging.keys), 0, -1):
            for cache in (self.staging, self.ours):
                name = cache.name(position)
                if name in present:
                    environ = present[name].environ
                    if isinstance(environ, dict):
                        inherited(environ)
                    inherited_sources(present[name].sources)
                    return Start(name, position, cache.revisions[position - 1])
        return Start(None, 0, None)

    def keep(self, database: str, start: Start) -> str | None:
        """Copy ``database`` (at head, no one connected) as generate's template at head, unless
        the run started from one at head already; the name of the template at head now (the
        one it started from, or the one kept), where there is one: a receipt goes there."""
        head = len(self.ours.keys)
        if head == 0:
            return None
        if start.position == head:
            return start.template
        try:
            self.ours.copy(database, head)
            kept = self.ours.keep()
        except BaseException:
            self.ours.discard()
            raise
        return self.ours.name(head) if head in kept else None


def head_templates(executor: Executor, server: Server) -> HeadTemplates | None:
    """The templates for ``executor``'s history on ``server``; ``None`` where there is no cache
    (a server that lives for this run only)."""
    from migrail.staging.run import Options, run_template_cache
    from migrail.staging.scope import StepScope
    from migrail.staging.templates import TemplateCache

    # The keys of a default run, as far as its first stepped revision: a stepped prefix is
    # keyed apart, and what comes after it is applied here.
    staging = run_template_cache(
        lambda _: None, executor, server, "base", Options(step="off"), StepScope("off", frozenset())
    )
    if staging is None:
        return None
    keys = [hashlib.sha256(_GENERATE_TAG + key.encode()).hexdigest()[:24] for key in staging.keys]
    ours = TemplateCache(
        staging.admin_url, staging.project, staging.revisions, keys, leave_out=staging.leave_out
    )
    return HeadTemplates(staging, ours)


def _usable(cache: TemplateCache) -> dict[str, Template]:
    """The templates of ``cache``'s project now on its server that may be served, by name."""
    from migrail.staging.templates import usable

    return usable(cache.admin_url, cache.project)
