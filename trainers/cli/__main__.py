"""``python -m trainers.cli``: the ``workbench`` command (the launcher starts training processes this way)."""

from __future__ import annotations

import sys

from trainers.cli.commands import main

sys.exit(main())
