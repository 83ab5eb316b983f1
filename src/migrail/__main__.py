from __future__ import annotations

from migrail.main import run

run()
