from __future__ import annotations

from migrail.main import main

raise SystemExit(main())
