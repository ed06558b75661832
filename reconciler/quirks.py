"""What reconciler has learned about an account's behaviour, per target: ``.reconciler/quirks.json``.

Only one behaviour is learned today: whether the account honours a field's ``required``. The docs
do not say (docs/api-notes.md §4, C5; U4): the seed guide saw it ignored on create, and no public source
shows it honoured. An apply that writes ``required: true`` and reads back ``required: false``
detects it (:attr:`reconciler.applier.ApplyResult.required_ignored`); the caller then records it
here (:func:`record_required_ignored`), so later plans of that target do not plan ``required``
(a difference that could never converge) and say why.

The planner stays pure: the caller turns the cache, and an explicit per-environment setting,
into planner options (:func:`required_options`). An explicit setting wins over the cache:
``honoured`` always plans ``required``, ``ignored`` never does.

The file, in the project folder (the folder of ``reconciler.yaml``)::

    {"https://acme.api-us1.com": {"required": "ignored", "detected": "2026-05-21T11:14:25+00:00"}}

Keys are target URLs without ``/api/3`` (never a token: the client refuses URLs that hold one).
The file is a cache: one that cannot be read or parsed counts as empty (a warning is logged), and
deleting it forgets what was learned.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from reconciler.errors import ConfigError
from reconciler.writes import write_atomic

__all__ = ["QUIRKS_FILE", "REQUIRED_SETTINGS", "RequiredSetting", "quirks_path", "read_quirks",
           "record_required_ignored", "required_options"]

log = logging.getLogger("reconciler.quirks")

#: The cache, relative to the project folder.
QUIRKS_FILE = Path(".reconciler") / "quirks.json"
RequiredSetting = Literal["ignored", "honoured"]
#: The values of the per-environment ``required:`` setting.
REQUIRED_SETTINGS: tuple[str, ...] = ("ignored", "honoured")
#: The largest cache file read (bytes): it holds one short entry per target.
_MAX_BYTES = 1_000_000


def _key(target_url: str) -> str:
    return target_url.strip().rstrip("/").removesuffix("/api/3").rstrip("/")


def quirks_path(project_root: str | os.PathLike[str]) -> Path:
    """``<project_root>/.reconciler/quirks.json``."""
    return Path(project_root) / QUIRKS_FILE


def read_quirks(project_root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The cache's entries by target; ``{}`` when there is none or it cannot be read."""
    path = quirks_path(project_root)
    try:
        if not path.is_file() or path.stat().st_size > _MAX_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s cannot be read (%s); ignored", path, type(exc).__name__)
        return {}
    if not isinstance(data, dict):
        log.warning("%s does not hold a JSON object; ignored", path)
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)}


def required_options(target_url: str, project_root: str | os.PathLike[str],
                     setting: str | None = None, *, setting_source: str = "reconciler.yaml") -> dict[str, Any]:
    """The :class:`~reconciler.planner.PlanOptions` keyword arguments for ``required`` on this target:
    ``{"required_managed": bool, "required_reason": str | None}``.

    ``setting`` is the environment's explicit ``required:`` (``"ignored"`` / ``"honoured"``, or
    ``None``); ``setting_source`` names where it was set, for the plan's note. Without a setting,
    the cache decides: a detection recorded for this target turns ``required`` off. A setting
    outside :data:`REQUIRED_SETTINGS` is a :class:`ConfigError`.
    """
    if setting is not None:
        if setting not in REQUIRED_SETTINGS:
            raise ConfigError(f"required: {setting!r} is not a valid setting; use one of "
                              f"{', '.join(REQUIRED_SETTINGS)}")
        if setting == "honoured":
            return {"required_managed": True, "required_reason": None}
        return {"required_managed": False, "required_reason": f"set in {setting_source}"}
    entry = read_quirks(project_root).get(_key(target_url), {})
    if entry.get("required") == "ignored":
        detected = entry.get("detected")
        when = f"detected {detected[:10]}" if isinstance(detected, str) and detected else "detected earlier"
        return {"required_managed": False, "required_reason": when}
    return {"required_managed": True, "required_reason": None}


def record_required_ignored(target_url: str, project_root: str | os.PathLike[str], *,
                            now: datetime | None = None) -> Path:
    """Record that the account behind ``target_url`` ignores ``required``; the file written.

    An earlier detection keeps its date. Other targets' entries are kept. Written atomically
    (:func:`reconciler.writes.write_atomic`; ``.reconciler/`` is created when missing).
    """
    path = quirks_path(project_root)
    data = read_quirks(project_root)
    key = _key(target_url)
    entry = dict(data.get(key, {}))
    if entry.get("required") != "ignored" or not isinstance(entry.get("detected"), str):
        when = (now or datetime.now(UTC)).astimezone(UTC)
        entry.update({"required": "ignored", "detected": when.isoformat(timespec="seconds")})
    data[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path
