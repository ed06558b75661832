"""reconciler: schema-as-code for ActiveCampaign Custom Objects.

The library behind the CLI, each command one function (the CLI resolves the target, loads the
files, calls one and renders what it returns)::

    import asyncio, reconciler

    async def main() -> None:
        desired = reconciler.load_dir("schemas")
        target = reconciler.resolve_target(sandbox=True)
        async with target.client() as client:
            plan = await reconciler.plan_account(client, desired.schemas)
            print(reconciler.render(plan, "text"))
            if plan.has_changes:
                result = await reconciler.apply_plan(plan, client, desired=desired.schemas)
                print("verified" if result.verified else "not verified")

    asyncio.run(main())

:func:`plan_account` (``reconciler plan``), :func:`apply_plan` (``reconciler apply``),
:func:`check_drift` (``reconciler drift``); :func:`load_dir` reads ``schemas/``,
:func:`resolve_target` picks the account as the CLI does, :func:`render` and :func:`render_drift`
print. The names are imported on first use, so ``import reconciler`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, for type checkers (``X as X``: re-exported)
    from reconciler.applier import ApplyResult as ApplyResult
    from reconciler.applier import apply_plan as apply_plan
    from reconciler.config import Target as Target
    from reconciler.config import resolve_target as resolve_target
    from reconciler.drift import DriftReport as DriftReport
    from reconciler.files import LoadedSchemas as LoadedSchemas
    from reconciler.files import load_dir as load_dir
    from reconciler.pipeline import check_drift as check_drift
    from reconciler.pipeline import plan_account as plan_account
    from reconciler.plan import Plan as Plan
    from reconciler.planner import PlanOptions as PlanOptions
    from reconciler.render import render as render
    from reconciler.render import render_drift as render_drift

#: public name -> the module that defines it
_EXPORTS = {
    "ApplyResult": "reconciler.applier",
    "DriftReport": "reconciler.drift",
    "LoadedSchemas": "reconciler.files",
    "Plan": "reconciler.plan",
    "PlanOptions": "reconciler.planner",
    "Target": "reconciler.config",
    "apply_plan": "reconciler.applier",
    "check_drift": "reconciler.pipeline",
    "load_dir": "reconciler.files",
    "plan_account": "reconciler.pipeline",
    "render": "reconciler.render",
    "render_drift": "reconciler.render",
    "resolve_target": "reconciler.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
