"""``init``: lay out a GitOps repository (reconciler.yaml, schemas/ with one example, the JSON Schema
copies editors read, .gitignore for .reconciler/, and with ``--ci`` the CI pipeline of the platform).

It never overwrites: a file that exists with other content stops the command before anything is
written (one line, exit 1); files that already hold what init would write are left alone, so a
second run changes nothing and says so. ``.gitignore`` is the one file added to rather than
refused: the ``.reconciler/`` line is appended when it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from reconciler.cli import common

#: The project file init writes: a commented example environment, the sandbox until one is set.
CONFIG_TEMPLATE = """\
# yaml-language-server: $schema=json-schema/config.json
# reconciler's project file. Until an environment is set, commands outside CI talk to the embedded
# sandbox (.reconciler/sandbox.sqlite3); `reconciler envs` lists the environments.
schemas_dir: schemas
# environments:
#   production:
#     url: https://YOUR-ACCOUNT.api-us1.com
#     token_env: AC_PROD_TOKEN        # the variable holding its API token (never the token itself)
#     protect: []                     # slugs (or slug.field-id) never deleted in this account
# default_env: production             # the target when no --env, --url or --sandbox is given
"""

GITIGNORE_LINE = ".reconciler/"

#: Template files shipped in reconciler/templates (package data) -> where init puts them.
CI_FILES = {
    "github": {f"github/{name}": f".github/workflows/{name}" for name in (
        "reconciler-plan.yml", "reconciler-apply.yml", "reconciler-drift.yml", "reconciler-reviewed.yml")},
    "gitlab": {"gitlab-ci.yml": ".gitlab-ci.yml"},
}


@dataclass(frozen=True)
class Planned:
    path: Path
    text: str
    action: str  # "write", "append", "same"


def _template(name: str) -> str:
    return resources.files("reconciler.templates").joinpath(name).read_text(encoding="utf-8")


def _wanted(ci: str | None) -> dict[str, str]:
    """Relative path -> content of every file init writes."""
    from reconciler.json_schema import COPY_DIR, COPY_FILES, json_schema_text

    files = {"reconciler.yaml": CONFIG_TEMPLATE, "schemas/orders.yaml": _template("orders.yaml")}
    for kind, name in COPY_FILES.items():
        files[f"{COPY_DIR}/{name}"] = json_schema_text(kind)
    for source, dest in CI_FILES.get(ci or "", {}).items():
        files[dest] = _template(source)
    return files


def _gitignore(root: Path) -> Planned:
    path = root / ".gitignore"
    if not path.exists():
        return Planned(path, f"{GITIGNORE_LINE}\n", "write")
    old = path.read_text(encoding="utf-8")
    if any(line.strip() in (GITIGNORE_LINE, GITIGNORE_LINE.rstrip("/")) for line in old.splitlines()):
        return Planned(path, old, "same")
    return Planned(path, old + ("" if old.endswith("\n") or not old else "\n") + f"{GITIGNORE_LINE}\n", "append")


def plan_init(root: Path, ci: str | None) -> list[Planned]:
    """What init would do in ``root``; :class:`CommandError` when it would overwrite a file."""
    planned, conflicts = [], []
    for rel, text in _wanted(ci).items():
        path = root / rel
        if path.is_symlink() or (path.exists() and not path.is_file()):
            conflicts.append(rel)
        elif path.exists():
            try:
                same = path.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            if not same:
                conflicts.append(rel)
            planned.append(Planned(path, text, "same"))
        else:
            planned.append(Planned(path, text, "write"))
    if (root / ".gitignore").is_symlink():
        conflicts.append(".gitignore")
    else:
        planned.append(_gitignore(root))
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise common.CommandError(f"{root / conflicts[0]} exists with other content{more}: init never overwrites; "
                                  "nothing was written")
    return planned


@common.cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--ci", type=click.Choice(["github", "gitlab"]),
              help="Also write the CI pipeline: .github/workflows/ (github) or .gitlab-ci.yml (gitlab).")
def init(directory: Path, ci: str | None) -> int:
    """Lay out a repository in DIRECTORY (default: here): reconciler.yaml, schemas/, json-schema/, .gitignore."""
    from reconciler.writes import write_atomic

    if directory.exists() and not directory.is_dir():
        raise common.CommandError(f"{directory}: not a directory")
    planned = plan_init(directory, ci)
    todo = [p for p in planned if p.action != "same"]
    if not todo:
        click.echo(f"Nothing to do: {directory} already holds everything init writes.")
        return common.EXIT_OK
    for p in todo:
        p.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(p.path, p.text)
        click.echo(common.inert(f"{'added .reconciler/ to' if p.action == 'append' else 'wrote'} {p.path}"))
    click.echo("\nNext: `reconciler validate`, then `reconciler plan` (the embedded sandbox until reconciler.yaml "
               "names an environment).")
    return common.EXIT_OK
