"""The project file ``reconciler.yaml``: where the schemas live, environments, ignore rules.

Errors use the same ``path:line:col: message`` machinery as the schema files (:mod:`reconciler.files`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.files import (
    FileError,
    FilesError,
    node_position,
    read_yaml,
    validate_strict,
    validation_errors,
)
from reconciler.model import FIELD_ID_RE, SLUG_RE

__all__ = ["PROJECT_FILE", "Environment", "ProjectConfig", "find_project", "load_project"]

PROJECT_FILE = "reconciler.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Environment(_Model):
    """One account. The token itself is never written in the file: ``token_env`` names its variable."""

    url: str
    token_env: str | None = None
    #: "slug" or "slug.field-id": never deleted in this environment, even without a declaration.
    protect: list[str] = []


class ProjectConfig(_Model):
    schemas_dir: str = "schemas"
    #: Delete schemas that are in the account but not in the files (default: report them only).
    prune: bool = False
    environments: dict[str, Environment] = {}
    #: Glob patterns on "slug.field.property" whose drift is left alone, e.g. "*.description".
    ignore: list[str] = []


_KEYS = {
    (): tuple(ProjectConfig.model_fields),
    ("environments", str): tuple(Environment.model_fields),
}


def _allowed(loc: tuple[str | int, ...]) -> tuple[str, ...]:
    if not loc:
        return _KEYS[()]
    if loc[0] == "environments" and len(loc) == 2:
        return _KEYS[("environments", str)]
    return ()


def _rule_errors(path: Path, data: object, config: ProjectConfig) -> list[FileError]:
    errors = []
    for name, env in config.environments.items():
        if not env.url.startswith(("https://", "http://")):
            line, col = node_position(data, ("environments", name, "url"))
            errors.append(FileError(path, line, col, f"url {env.url!r} must start with https://"))
        for i, entry in enumerate(env.protect):
            slug, _, field_id = entry.partition(".")
            if not SLUG_RE.match(slug) or ("." in entry and not FIELD_ID_RE.match(field_id)):
                line, col = node_position(data, ("environments", name, "protect", i))
                errors.append(FileError(path, line, col,
                                        f"protect entry {entry!r} must be 'slug' or 'slug.field-id'"))
    return errors


def load_project(path: str | os.PathLike[str] = PROJECT_FILE) -> ProjectConfig:
    """Read ``reconciler.yaml``; a missing or empty file gives the defaults.

    Raises :class:`reconciler.files.FilesError` with every problem, as ``path:line:col: message``.
    """
    p = Path(path)
    if not p.exists():
        return ProjectConfig()
    data, errors = read_yaml(p, allow_empty=True, what="the project settings")
    if errors:
        raise FilesError(errors)
    if data is None:
        return ProjectConfig()
    if not isinstance(data, dict):
        raise FilesError([FileError(p, 1, 1, f"{p.name} must hold a mapping (schemas_dir, environments, …)")])
    try:
        config = validate_strict(ProjectConfig, data)
    except ValidationError as exc:
        raise FilesError(validation_errors(p, data, exc, allowed_keys=_allowed)) from None
    errors = _rule_errors(p, data, config)
    if errors:
        raise FilesError(errors)
    return config


def find_project(start_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """``reconciler.yaml`` in ``start_dir`` (default: the current directory), if there is one.

    Parent directories are not searched: run reconciler from the project root.
    """
    candidate = Path(start_dir if start_dir is not None else Path.cwd()) / PROJECT_FILE
    return candidate if candidate.is_file() else None
