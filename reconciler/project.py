"""The project file ``reconciler.yaml``: where the schemas live, environments, ignore rules.

Errors use the same ``path:line:col: message`` machinery as the schema files (:mod:`reconciler.fileerrors`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.fileerrors import FileError, FilesError, validate_strict, validation_errors
from reconciler.model import FIELD_ID_RE, SLUG_RE, excerpt
from reconciler.yamlread import Doc, read_yaml

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
    #: Requests per second reconciler may use in this account (default: the documented 5). Lower it
    #: when other integrations share the account's budget.
    rate_limit: float | None = None
    #: Whether this account honours a field's ``required`` (the API docs do not say, docs/api-notes.md U4):
    #: ``honoured`` always plans it, ``ignored`` never does; unset, reconciler detects it on the first
    #: apply that writes it and remembers it in .reconciler/quirks.json.
    required: Literal["ignored", "honoured"] | None = None


class ProjectConfig(_Model):
    #: Relative to the folder of reconciler.yaml (not to the current directory).
    schemas_dir: str = "schemas"
    #: Delete schemas that are in the account but not in the files (default: report them only).
    prune: bool = False
    environments: dict[str, Environment] = {}
    #: The environment used when no --env is given (without it, defining environments makes --env required).
    default_env: str | None = None
    #: "sandbox": the embedded sandbox is this project's default target (also in CI).
    target: Literal["sandbox"] | None = None
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


def _rule_errors(path: Path, doc: Doc, config: ProjectConfig) -> list[FileError]:
    errors = []
    if config.default_env is not None and config.default_env not in config.environments:
        line, col = doc.position(("default_env",))
        known = ", ".join(config.environments) or "none"
        errors.append(FileError(path, line, col, f"default_env {config.default_env!r} is not one of the "
                                f"environments (defined: {known})"))
    if config.default_env is not None and config.target is not None:
        line, col = doc.position(("target",))
        errors.append(FileError(path, line, col, "target: sandbox and default_env both name the default "
                                "target: keep one"))
    for name, env in config.environments.items():
        if not env.url.startswith(("https://", "http://")):
            line, col = doc.position(("environments", name, "url"))
            errors.append(FileError(path, line, col, f"url {excerpt(env.url)} must start with https://"))
        if env.rate_limit is not None and not 0 < env.rate_limit <= 100:
            line, col = doc.position(("environments", name, "rate_limit"))
            errors.append(FileError(path, line, col, f"rate_limit {env.rate_limit} must be a number of "
                                    "requests per second above 0 (the account allows 5)"))
        for i, entry in enumerate(env.protect):
            slug, _, field_id = entry.partition(".")
            if not SLUG_RE.match(slug) or ("." in entry and not FIELD_ID_RE.match(field_id)):
                line, col = doc.position(("environments", name, "protect", i))
                errors.append(FileError(path, line, col,
                                        f"protect entry {excerpt(entry)} must be 'slug' or 'slug.field-id'"))
    return errors


def load_project(path: str | os.PathLike[str] = PROJECT_FILE, *, required: bool = False) -> ProjectConfig:
    """Read ``reconciler.yaml``; a missing or empty file gives the defaults, unless ``required``
    (a path the user named with ``--config``): then a missing file is an error.

    Raises :class:`reconciler.fileerrors.FilesError` with every problem, as ``path:line:col: message``.
    """
    p = Path(path)
    if not p.exists():
        if required:
            raise FilesError([FileError(p, 0, 0, "no such project file (given with --config)")])
        return ProjectConfig()
    if not p.is_file():
        raise FilesError([FileError(p, 0, 0, "the project file is not a regular file")])
    doc, errors = read_yaml(p, allow_empty=True, what="the project settings")
    if errors:
        raise FilesError(errors)
    if doc is None:
        return ProjectConfig()
    if not isinstance(doc.data, dict):
        raise FilesError([FileError(p, 1, 1, f"{p.name} must hold a mapping (schemas_dir, environments, …)")])
    try:
        config = validate_strict(ProjectConfig, doc.data, plain=doc.plain)
    except ValidationError as exc:
        raise FilesError(validation_errors(p, doc, exc, allowed_keys=_allowed)) from None
    errors = _rule_errors(p, doc, config)
    if errors:
        raise FilesError(errors)
    return config


def find_project(start_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """``reconciler.yaml`` in ``start_dir`` (default: the current directory), if there is one.

    Parent directories are not searched: run reconciler from the project root.
    """
    candidate = Path(start_dir if start_dir is not None else Path.cwd()) / PROJECT_FILE
    return candidate if candidate.is_file() else None
