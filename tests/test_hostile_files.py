"""Schema files that cannot be turned against the user (issue 11, files; issue 10 item 9).

The corpus in ``tests/hostile/`` runs through the real CLI as a subprocess, from a temporary
repository: each case must exit 1 with exactly its error lines, no traceback, no secret and no
long quote of a file, in under 2 s (process start included). Static cases are folders
(``schemas/…`` and ``expected.txt``); links, FIFOs, bombs and big files come from
``tests/hostile/generators.py``.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml.comments import CommentedMap

from reconciler import files, loading
from reconciler.files import FilesError, export_schemas, fmt_dir, load_dir, schema_files
from reconciler.model import SLUG_MAX, SLUG_RE, Labels, Schema
from reconciler.yamlread import Doc
from tests.hostile.generators import CASES, SECRET

HOSTILE = Path(__file__).parent / "hostile"
STATIC = sorted(p.name for p in HOSTILE.iterdir() if (p / "expected.txt").is_file())
#: Wall time allowed per case, process start included.
TIME_LIMIT = 2.0
#: No error line may quote a file at length (an excerpt is 40 characters).
LONGEST_LINE = 300


def _repository(tmp_path: Path) -> tuple[Path, Path]:
    """A repository (``.git/`` and ``schemas/``) and a directory outside it."""
    project, outside = tmp_path / "repo", tmp_path / "outside"
    (project / ".git").mkdir(parents=True)
    (project / "schemas").mkdir()
    outside.mkdir()
    return project, outside


def _validate(project: Path) -> tuple[int, str, str, float]:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "reconciler", "--dir", "schemas", "validate"], cwd=project,
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr, time.perf_counter() - start


def _check(project: Path, expected: list[str]) -> None:
    code, out, err, seconds = _validate(project)
    assert err.splitlines() == expected
    assert code == 1 and out == ""
    assert "Traceback" not in err and "Internal error" not in err
    assert SECRET not in err
    assert all(len(line) <= LONGEST_LINE for line in err.splitlines())
    assert seconds < TIME_LIMIT, f"{seconds:.2f} s"


def test_corpus_holds_the_issue_cases() -> None:
    assert len(STATIC) >= 10 and len(CASES) >= 20


@pytest.mark.parametrize("case", STATIC)
def test_static_case(case: str, tmp_path: Path) -> None:
    project = tmp_path / "repo"
    shutil.copytree(HOSTILE / case, project, symlinks=True)
    (project / ".git").mkdir()
    expected = (project / "expected.txt").read_text(encoding="utf-8").splitlines()
    _check(project, expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_case(case: str, tmp_path: Path) -> None:
    project, outside = _repository(tmp_path)
    expected = CASES[case](project, outside)
    _check(project, expected)


def test_not_a_schema_is_not_printed() -> None:
    """The error about a file that is not a schema quotes 40 characters of it, no more."""
    text = (HOSTILE / "not-a-schema-inside-repo" / "schemas" / "passwd.yaml").read_text()
    expected = (HOSTILE / "not-a-schema-inside-repo" / "expected.txt").read_text()
    assert "FAKE-SECRET-IN-LINE-THREE" in text and "FAKE-SECRET" not in expected


# ---- which files are read


def test_subdirectories_sorted_hidden_skipped(tmp_path: Path) -> None:
    project, _ = _repository(tmp_path)
    schemas = project / "schemas"
    for rel in ("b.yaml", "a-b/x.yml", "a/z.yaml", "a/deeper/y.yaml", ".hidden/h.yaml", "a/.h.yaml", "notes.txt"):
        (schemas / rel).parent.mkdir(parents=True, exist_ok=True)
        (schemas / rel).write_text(f"apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: s{len(rel)}\n")
    assert [p.relative_to(schemas).as_posix() for p in schema_files(schemas)] == [
        "a/deeper/y.yaml", "a/z.yaml", "a-b/x.yml", "b.yaml"]


def test_links_inside_the_repository_are_followed(tmp_path: Path) -> None:
    project, _ = _repository(tmp_path)
    (project / "shared").mkdir()
    (project / "shared" / "orders.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: orders\nlabels: {singular: O, plural: Os}\n")
    os.symlink("../shared/orders.yaml", project / "schemas" / "orders.yaml")
    os.symlink("../shared", project / "schemas" / "team")
    with pytest.raises(FilesError) as exc:  # the same file twice, through two links: both are read
        load_dir(project / "schemas")
    assert [str(e) for e in exc.value.errors] == [
        f"{project}/schemas/team/orders.yaml:3:7: slug 'orders' is already declared in {project}/schemas/orders.yaml"]
    os.unlink(project / "schemas" / "team")
    assert load_dir(project / "schemas").sources == {"orders": project / "schemas" / "orders.yaml"}


def test_root_keyword_bounds_links(tmp_path: Path) -> None:
    """``root`` decides what "inside" means; the default is the nearest ancestor holding .git."""
    project, outside = _repository(tmp_path)
    (outside / "x.yaml").write_text("apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: x\n"
                                    "labels: {singular: X, plural: Xs}\n")
    os.symlink(outside / "x.yaml", project / "schemas" / "x.yaml")
    assert files.default_root(project / "schemas") == project
    with pytest.raises(FilesError, match="outside the repository"):
        load_dir(project / "schemas")
    assert list(load_dir(project / "schemas", root=tmp_path)) == ["x"]


def test_project_file_is_skipped_only_itself(tmp_path: Path) -> None:
    """schemas_dir: . reads every schema but the project file; schemas/reconciler.yaml is a schema."""
    project, _ = _repository(tmp_path)
    schema = "apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: reconciler\nlabels: {singular: R, plural: Rs}\n"
    (project / "reconciler.yaml").write_text("schemas_dir: .\n")
    (project / "schemas" / "reconciler.yaml").write_text(schema)
    loaded = load_dir(project, project_file=project / "reconciler.yaml")
    assert loaded.sources == {"reconciler": project / "schemas" / "reconciler.yaml"}
    with pytest.raises(FilesError) as exc:
        load_dir(project)  # without project_file, the project file is just another YAML file
    assert {e.path for e in exc.value.errors} == {project / "reconciler.yaml"}
    assert list(load_dir(project / "schemas", project_file=project / "reconciler.yaml")) == ["reconciler"]


def test_fmt_refuses_hostile_directories(tmp_path: Path) -> None:
    project, _ = _repository(tmp_path)
    messy = "kind: CustomObjectSchema\napiVersion: reconciler/v1\nslug: a\nlabels: {singular: A, plural: As}\n"
    (project / "schemas" / "a.yaml").write_text(messy)
    os.symlink("/etc/passwd", project / "schemas" / "p.yaml")
    with pytest.raises(FilesError, match="symbolic link to a file outside the repository"):
        fmt_dir(project / "schemas")
    assert (project / "schemas" / "a.yaml").read_text() == messy


def test_no_document_alive_at_the_cross_file_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded memory: by the time the rules across files run, no file's document is alive."""
    for i in range(30):
        (tmp_path / f"s{i}.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: s{i}\nlabels: {{singular: S{i}, plural: Ss}}\n"
            "fields:\n  - id: a\n    type: text\n    labels: {singular: A, plural: As}\n")
    alive: list[int] = []
    check_all = loading._check_all

    def counting(parsed: list) -> None:
        gc.collect()
        alive.append(sum(isinstance(o, (Doc, CommentedMap)) for o in gc.get_objects()))
        check_all(parsed)

    monkeypatch.setattr(loading, "_check_all", counting)
    assert len(load_dir(tmp_path)) == 30
    assert alive == [0]


# ---- every file export writes is a file load_dir reads


HOSTILE_SLUGS = [
    "reconciler", "a" * SLUG_MAX, "a" * (SLUG_MAX + 1), "a" * 195, "a" * 196, "a" * 300, ".hidden", "-x", "orders.yml",
    "\u043erders",  # Cyrillic o
    "ORDERS", "a/b", "..", "x\x1b[2K", "x\u202e", "con", "tab\tname",
]


def _schema(slug: str) -> Schema:
    return Schema(slug=slug, labels=Labels(singular="X", plural="Xs"))


def _round_trip(slug: str, directory: Path) -> None:
    """Export ``slug``: either refused with one line naming it, or a file that load_dir reads."""
    try:
        written = export_schemas([_schema(slug)], directory)
    except FilesError as exc:
        assert len(exc.errors) == 1 and exc.errors[0].message.startswith("cannot export schema ")
        assert not directory.exists() or not any(directory.iterdir())
        return
    assert len(written) == 1
    try:
        loaded = load_dir(directory)
    except FilesError as exc:  # read, and found invalid (the model's slug rule): never skipped
        assert {e.path for e in exc.errors} == set(written)
        assert not SLUG_RE.match(slug) or len(slug) > SLUG_MAX
    else:
        assert loaded.sources == {slug: written[0]}
        assert loaded[slug].comparable() == _schema(slug).comparable()
    for path in written:
        path.unlink()


@pytest.mark.parametrize("slug", HOSTILE_SLUGS)
def test_export_round_trips_hostile_slugs(slug: str, tmp_path: Path) -> None:
    _round_trip(slug, tmp_path / "schemas")


@settings(max_examples=60, deadline=None)
@given(st.from_regex(SLUG_RE, fullmatch=True).filter(lambda s: len(s) <= SLUG_MAX)
       | st.text(min_size=1, max_size=80))
def test_export_round_trips_any_slug(tmp_path_factory: pytest.TempPathFactory, slug: str) -> None:
    _round_trip(slug, tmp_path_factory.mktemp("export") / "schemas")


def test_export_refuses_the_project_file_and_case_twins(tmp_path: Path) -> None:
    (tmp_path / "reconciler.yaml").write_text("schemas_dir: .\n")
    with pytest.raises(FilesError) as exc:
        export_schemas([_schema("reconciler"), _schema("orders"), _schema("Orders")], tmp_path, force=True,
                       project_file=tmp_path / "reconciler.yaml")
    assert [str(e) for e in exc.value.errors] == [
        f"{tmp_path}/Orders.yaml: cannot export schema 'Orders': differs from 'orders' only in case",
        f"{tmp_path}/reconciler.yaml: cannot export schema 'reconciler': its file would be the project file",
    ]
    assert (tmp_path / "reconciler.yaml").read_text() == "schemas_dir: .\n"
    assert not (tmp_path / "orders.yaml").exists()
