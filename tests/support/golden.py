"""Golden planner cases, ``tests/cases/<name>/``: loading a case (live.yaml, desired/,
options.yaml) and planning it; see tests/test_planner.py for the layout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from reconciler.model import Schema
from reconciler.plan import Impact, Plan
from reconciler.planner import PlanOptions, plan
from reconciler.wire import schema_from_api

CASES = Path(__file__).resolve().parent.parent / "cases"


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
    data = p.model_dump(mode="json")
    for volatile in ("created_at", "digest"):
        data.pop(volatile, None)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir())
