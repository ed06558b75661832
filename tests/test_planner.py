"""Golden planner cases: ``tests/cases/<name>/`` (a new case is a new folder).

Each case has ``live.yaml`` (a YAML list of API-shaped schema objects, parsed with
``wire.schema_from_api``), ``desired/*.yaml`` (schema files, loaded with ``files.load_dir``), an
optional ``options.yaml`` (prune, protect, targets, excludes, target_url, impacts to inject
``{key: [affected, total] | null}``, expect_error, and ``lenient_files: true`` to bypass the files
layer's validation for a case about something it already refuses), and the expected ``expected.txt`` (text render, no colour) and ``expected.json``
(the plan file without the volatile ``created_at``/``digest``). ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import planner as planner_module
from reconciler.plan import Plan
from reconciler.planner import plan
from reconciler.render import render
from tests.support.golden import (
    CASES,
    UPDATE,
    apply_impacts,
    build_case,
    case_names,
    is_lenient,
    load_desired,
    load_live,
    load_options,
    plan_json_for_golden,
)


def _check(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        path.write_text(actual, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{path} did not exist: written, review it and re-run")
        return
    assert actual == path.read_text(encoding="utf-8"), f"{path} differs (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("name", case_names())
def test_golden(name: str) -> None:
    case_dir = CASES / name
    options, impacts, expect_error = load_options(case_dir)
    desired = load_desired(case_dir / "desired", lenient=is_lenient(case_dir))
    live = load_live(case_dir / "live.yaml")
    if expect_error:
        exc_type = getattr(planner_module, expect_error)
        with pytest.raises(exc_type) as info:
            plan(desired, live, options)
        _check(case_dir / "expected.txt", f"Error: {info.value}\n")
        return
    p = apply_impacts(plan(desired, live, options), impacts)
    _check(case_dir / "expected.txt", render(p, "text"))
    _check(case_dir / "expected.json", plan_json_for_golden(p))
    # whatever the case, the plan file round-trips and planning is deterministic
    assert Plan.from_json(p.to_json()) == p
    again = apply_impacts(plan(desired, live, options), impacts)
    assert again.to_json() == p.to_json()


def test_there_are_enough_cases() -> None:
    assert len(case_names()) >= 28


def test_seed_is_one_add() -> None:
    p = build_case("seed-create")
    assert render(p, "text").splitlines()[-1] == "Plan: 1 to add, 0 to change, 0 to destroy."
    assert p.summary["add"] == 1


def test_every_code_is_exercised_by_a_case() -> None:
    from reconciler.plan import CODES

    seen: set[str] = set()
    for name in case_names():
        case_dir = CASES / name
        if load_options(case_dir)[2]:
            continue
        seen |= {f.code for f in build_case(name).findings}
    assert seen == set(CODES)
