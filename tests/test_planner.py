"""Golden planner cases: ``tests/cases/<name>/`` (a new case is a new folder).

Each case has ``live.yaml`` (a YAML list of API-shaped schema objects, parsed with
``wire.schema_from_api``), ``desired/*.yaml`` (schema files, loaded with ``files.load_dir``), an
optional ``options.yaml`` (prune, protect, targets, excludes, target_url, impacts to inject
``{key: [affected, total] | null}``, expect_error, and ``lenient_files: true`` to bypass the files
layer's validation for a case about something it already refuses), and the expected ``expected.txt`` (text render, no colour) and ``expected.json``
(the plan file without the volatile ``created_at``/``digest``). ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler import planner as planner_module
from reconciler.model import Schema
from reconciler.plan import Impact, Plan
from reconciler.planner import PlanOptions, plan
from reconciler.render import render
from reconciler.wire import schema_from_api

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
_yaml = YAML(typ="safe", pure=True)


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return _yaml.load(fh)


def schema_from_file_data(data: dict[str, Any]) -> Schema:
    """The schema file format -> Schema (a stand-in for ``reconciler.files``: options are value strings)."""
    body = {k: v for k, v in data.items() if k not in ("apiVersion", "kind")}
    fields = []
    for f in body.get("fields") or ():
        f = dict(f)
        if f.get("options") is not None:
            f["options"] = [o if isinstance(o, dict) else {"value": o} for o in f["options"]]
        fields.append(f)
    body["fields"] = fields
    return Schema.model_validate(body)


def load_desired(directory: Path, *, lenient: bool = False) -> dict[str, Schema]:
    """The desired schemas of a case through the real files layer (``lenient``: no validation)."""
    if not lenient:
        from reconciler.files import load_dir

        return dict(load_dir(directory).schemas)
    schemas = [schema_from_file_data(_load_yaml(p)) for p in sorted(directory.glob("*.yaml"))]
    return {s.slug: s for s in schemas}


def load_live(path: Path) -> dict[str, Schema]:
    items = _load_yaml(path) or []
    schemas = [schema_from_api(item) for item in items]
    return {s.slug: s for s in schemas}


def is_lenient(case_dir: Path) -> bool:
    path = case_dir / "options.yaml"
    return path.exists() and bool((_load_yaml(path) or {}).get("lenient_files"))


def load_options(case_dir: Path) -> tuple[PlanOptions, dict[str, Impact | None], str | None]:
    path = case_dir / "options.yaml"
    raw: dict[str, Any] = _load_yaml(path) if path.exists() else {}
    raw = dict(raw or {})
    impacts_raw = raw.pop("impacts", None) or {}
    expect_error = raw.pop("expect_error", None)
    raw.pop("lenient_files", None)
    options = PlanOptions(
        prune=bool(raw.pop("prune", False)),
        protect=frozenset(raw.pop("protect", ())),
        targets=tuple(raw.pop("targets", ())),
        excludes=tuple(raw.pop("excludes", ())),
        target_url=raw.pop("target_url", None),
    )
    assert not raw, f"unknown keys in {path}: {sorted(raw)}"
    impacts = {k: (None if v is None else Impact(v[0], v[1])) for k, v in impacts_raw.items()}
    return options, impacts, expect_error


def apply_impacts(p: Plan, impacts: dict[str, Impact | None]) -> Plan:
    """Inject impacts; ``None`` in a case file means "could not be counted" (unknown)."""
    if not impacts:
        return p
    for key in impacts:
        assert p.change(key) is not None, f"no change {key!r} in the plan"
    return p.with_impacts({k: v if v is not None else Impact(None, None) for k, v in impacts.items()})


def build_case(name: str) -> Plan:
    case_dir = CASES / name
    options, impacts, _ = load_options(case_dir)
    desired = load_desired(case_dir / "desired", lenient=is_lenient(case_dir))
    live = load_live(case_dir / "live.yaml")
    return apply_impacts(plan(desired, live, options), impacts)


def plan_json_for_golden(p: Plan) -> str:
    data = p.to_dict()
    for volatile in ("created_at", "digest"):
        data.pop(volatile, None)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir())


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
