"""The bad-input corpus: each ``tests/files/bad/<case>/`` holds a schemas directory and/or a
``reconciler.yaml`` and ``expected.txt``, the exact error lines (paths relative to the case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.files import FilesError, load_dir
from reconciler.project import load_project

BAD = Path(__file__).parent / "files" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def error_lines(case_dir: Path) -> list[str]:
    """Every error line for a case, as the CLI would print them (run from the case directory)."""
    lines: list[str] = []
    if (case_dir / "schemas").exists():
        try:
            load_dir("schemas")
        except FilesError as exc:
            lines += [str(e) for e in exc.errors]
    if (case_dir / "reconciler.yaml").exists():
        try:
            load_project("reconciler.yaml")
        except FilesError as exc:
            lines += [str(e) for e in exc.errors]
    return lines


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 28


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case_dir = BAD / case
    monkeypatch.chdir(case_dir)
    expected = (case_dir / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert expected, "a bad case must expect at least one error"
    assert error_lines(case_dir) == expected
