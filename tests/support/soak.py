"""How many fault seeds the fault tests run: 3 in the suite (their minutes add up), more on demand:
``RECONCILER_FAULT_SEEDS=10 python -m pytest tests/test_records_*.py tests/test_migrate_resume.py -k fault``."""

from __future__ import annotations

import os


def fault_seeds() -> list[int]:
    """Seeds 1..N, N from ``RECONCILER_FAULT_SEEDS`` (default 3)."""
    return list(range(1, int(os.environ.get("RECONCILER_FAULT_SEEDS", "3")) + 1))
