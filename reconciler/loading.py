"""Loading schema files: which files (:func:`schema_files`), and every problem of every file.

:func:`load_dir`, :func:`load_file` and :func:`load_text` report *every* problem of *every* file in
one :class:`~reconciler.fileerrors.FilesError`, each pointing at the offending node: what the reader
finds (:mod:`reconciler.yamlread`), what the file format refuses (:mod:`reconciler.fileformat`),
every rule of :func:`reconciler.model.local_problems`, and the rules across files (one slug, one
file; namespaces; renames).

Schema files may come from a pull request, so finding them is defensive: ``**/*.yaml|yml`` under
the directory, hidden names skipped, symbolic links followed only inside the repository, anything
that is not a regular file an error that names it (never opened).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.filecheck import to_schema
from reconciler.fileerrors import FileError, FilesError, Loc, describe
from reconciler.fileformat import SchemaFile
from reconciler.model import Schema, excerpt, local_problems, namespace_problems
from reconciler.source import FORBIDDEN, char_name, file_kind, read_text
from reconciler.yamlread import Doc, read_yaml

__all__ = [
    "SCHEMA_SUFFIXES",
    "LoadedSchemas",
    "default_root",
    "load_dir",
    "load_file",
    "load_text",
    "schema_files",
]

SCHEMA_SUFFIXES = (".yaml", ".yml")


@dataclass
class _Parsed:
    """One file's outcome. Its document is not kept (10,000 files would keep 10,000 documents
    alive until the end): only the positions the rules across files point at."""

    path: Path
    schema: Schema | None = None
    slug: str | None = None  # as written, even when the file is otherwise invalid
    errors: list[FileError] = field(default_factory=list)
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def at(self, loc: Loc, message: str) -> None:
        """Add an error at one of the kept positions (the file's start if it was not kept)."""
        line, col = self.positions.get(loc, (1, 1))
        self.errors.append(FileError(self.path, line, col, message))


#: The first keys of a schema file, for the message about a file that is not a mapping.
_FIRST_KEYS = ", ".join(list(SchemaFile.model_fields)[:3])


def _check_document(path: Path, doc: Doc) -> _Parsed:
    """Everything about one parsed document except the rules that need the other files."""
    out = _Parsed(path)
    data = doc.data
    if not isinstance(data, dict):
        line, col = doc.position(())
        out.errors.append(FileError(path, line, col, f"a schema file must hold a mapping ({_FIRST_KEYS}, …), "
                                                     f"not {describe(data)}"))
        return out
    if isinstance(data.get("slug"), str):
        out.slug = data["slug"]
        out.positions[("slug",)] = doc.position(("slug",))
    schema, out.errors = to_schema(path, doc, plain=doc.plain)
    if schema is None:
        return out
    out.schema = schema  # well-formed: the rules across files apply to it, whatever its own problems
    for problem in local_problems(schema):
        line, col = doc.position(problem.loc)
        out.errors.append(FileError(path, line, col, problem.message))
    out.positions[("renamed_from",)] = doc.position(("renamed_from",))
    for i in range(len(schema.relationships)):
        loc: Loc = ("relationships", i, "namespace")
        out.positions[loc] = doc.position(loc)
    return out


def _check_all(parsed: list[_Parsed]) -> None:
    """Rules across files: one slug, one file; namespaces with every slug known; renames."""
    first_by_slug: dict[str, _Parsed] = {}
    for p in parsed:
        if p.slug is None:
            continue
        if p.slug in first_by_slug:
            p.at(("slug",), f"slug {excerpt(p.slug)} is already declared in {first_by_slug[p.slug].path}")
            p.schema = None
        else:
            first_by_slug[p.slug] = p
    slugs = set(first_by_slug)
    renamed: dict[str, _Parsed] = {}
    for p in parsed:
        schema = p.schema
        if schema is None:
            continue
        for problem in namespace_problems(schema, known_slugs=slugs - {schema.slug}):
            p.at(problem.loc, problem.message)
        old = schema.renamed_from
        if old is not None and old != schema.slug:
            if old in first_by_slug:
                p.at(("renamed_from",), f"renamed_from {excerpt(old)} is the slug of {first_by_slug[old].path}: "
                                        "a slug cannot be renamed and kept")
            elif old in renamed:
                p.at(("renamed_from",), f"renamed_from {excerpt(old)} is already claimed by {renamed[old].path}")
            else:
                renamed[old] = p


class LoadedSchemas(Mapping[str, Schema]):
    """The desired schemas of a directory, by slug (file-name order), with where each came from.

    ``empty`` is true when the directory is missing or holds no schema file: callers must not
    read that as "delete everything".
    """

    def __init__(self, directory: Path, schemas: dict[str, Schema], sources: dict[str, Path],
                 *, missing: bool = False) -> None:
        self.directory = directory
        self.schemas = schemas
        self.sources = sources
        self.missing = missing

    @property
    def empty(self) -> bool:
        return not self.schemas

    def __getitem__(self, slug: str) -> Schema:
        return self.schemas[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self.schemas)

    def __len__(self) -> int:
        return len(self.schemas)

    def __repr__(self) -> str:
        return f"LoadedSchemas({self.directory!s}, {sorted(self.schemas)})"


# --------------------------------------------------------------------------------------------
# Which files


def default_root(directory: str | os.PathLike[str]) -> Path:
    """The repository a schemas directory belongs to: the nearest ancestor (itself included) that
    holds ``.git``, else the directory's parent. Symbolic links under the directory may point
    anywhere inside it, and nowhere else."""
    d = Path(os.path.abspath(directory))
    for candidate in (d, *d.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return d.parent


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _hidden_below(real: str, root_real: str) -> bool:
    rel = os.path.relpath(real, root_real)
    return any(part.startswith(".") and part not in (".", "..") for part in Path(rel).parts)


def _link_problem(path: Path, st: os.stat_result, root_real: str) -> str | None:
    """Why a symbolic link that resolves may not be followed (None: follow it)."""
    real = os.path.realpath(path)
    what = "a file" if stat.S_ISREG(st.st_mode) else file_kind(st.st_mode)
    if not _inside(real, root_real):
        return f"symbolic link to {what} outside the repository; not read"
    if _hidden_below(real, root_real):
        return f"symbolic link to {what} in a hidden path ({os.path.relpath(real, root_real)}); not read"
    return None


def _discover(directory: Path, root: Path | None, project_file: Path | None) -> tuple[list[Path], list[FileError]]:
    """The schema files under ``directory`` (recursively, sorted by relative path) and the problems
    found on the way. Nothing here opens a file: kinds come from ``lstat``/``stat``.

    Hidden names (``.x``) are skipped, files and directories alike. A symbolic link to a schema
    file or a directory is followed only when it resolves inside ``root`` and not into a hidden
    path (a link to any other regular file is ignored, like that file would be). A dangling link,
    a link loop, a FIFO, a socket or a device is an error whatever its name (it might have been a
    schema), as is a name holding a forbidden character. The project file is skipped, compared
    by real path. A directory reached twice (a link cycle) is an error, not read again.
    """
    root_real = os.path.realpath(root if root is not None else default_root(directory))
    project_real = os.path.realpath(project_file) if project_file is not None else None
    files: list[Path] = []
    errors: list[FileError] = []
    top = os.stat(directory)
    read_dirs: dict[tuple[int, int], Path] = {(top.st_dev, top.st_ino): directory}
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            names = sorted(e.name for e in os.scandir(current))
        except OSError as exc:
            errors.append(FileError(current, 0, 0, f"cannot read directory: {exc.strerror or exc}"))
            continue
        for name in reversed(names):  # a stack: pushed last, read first
            if name.startswith("."):
                continue
            path = current / name
            bad = FORBIDDEN.search(name)
            if bad is not None:
                errors.append(FileError(current, 0, 0, f"file name {excerpt(name)} holds a "
                                                       f"{char_name(bad.group()[0])}; not read"))
                continue
            try:
                is_link = stat.S_ISLNK(os.lstat(path).st_mode)
                st = os.stat(path)
            except FileNotFoundError:
                if is_link:
                    errors.append(FileError(path, 0, 0, "symbolic link to a missing file (a dangling link); not read"))
                continue  # removed while listing
            except OSError as exc:
                message = ("symbolic link loop; not read" if exc.errno == errno.ELOOP
                           else f"cannot read: {exc.strerror or exc}")
                errors.append(FileError(path, 0, 0, message))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            is_schema = stat.S_ISREG(st.st_mode) and path.suffix in SCHEMA_SUFFIXES
            if is_link and (is_dir or is_schema or not stat.S_ISREG(st.st_mode)):
                problem = _link_problem(path, st, root_real)
                if problem is not None:
                    errors.append(FileError(path, 0, 0, problem))
                    continue
            if is_dir:
                key = (st.st_dev, st.st_ino)
                if key in read_dirs:
                    what = "symbolic link to" if is_link else "the same directory as"
                    errors.append(FileError(path, 0, 0, f"{what} {read_dirs[key]}/, which is already read;"
                                                        " not read twice"))
                    continue
                read_dirs[key] = path
                stack.append(path)
            elif stat.S_ISREG(st.st_mode):
                if is_schema and not (project_real is not None and os.path.realpath(path) == project_real):
                    files.append(path)
            else:
                errors.append(FileError(path, 0, 0, f"is {file_kind(st.st_mode)}, not a file; not read"))
    return sorted(files), errors


def _check_directory(d: Path, root: Path | None) -> list[FileError]:
    """Problems with the schemas directory itself (it exists: see :func:`load_dir`)."""
    if os.path.islink(d) or not os.path.isdir(d):
        try:
            st = os.stat(d)
        except OSError as exc:
            return [FileError(d, 0, 0, "symbolic link loop; not read" if exc.errno == errno.ELOOP
                              else "symbolic link to a missing directory (a dangling link)")]
        if not stat.S_ISDIR(st.st_mode):
            return [FileError(d, 0, 0, "not a directory")]
    root_real = os.path.realpath(root if root is not None else default_root(d))
    if not _inside(os.path.realpath(d), root_real):
        return [FileError(d, 0, 0, "the schemas directory resolves to a directory outside the repository"
                                   f" ({root_real}); not read")]
    return []


def schema_files(directory: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
                 project_file: str | os.PathLike[str] | None = None) -> list[Path]:
    """The schema files under ``directory`` (``**/*.yaml``, ``**/*.yml``), sorted by relative path.

    Hidden files and directories are skipped, and so is ``project_file``; symbolic links are
    followed only inside ``root`` (default: :func:`default_root`). A missing directory has none.
    Raises :class:`FilesError` for what cannot be read (links out, dangling links, FIFOs, …).
    """
    d = Path(directory)
    if not os.path.lexists(d):
        return []
    paths, errors = _files_of(d, root, project_file)
    if errors:
        raise FilesError(errors)
    return paths


def _files_of(d: Path, root: str | os.PathLike[str] | None,
              project_file: str | os.PathLike[str] | None) -> tuple[list[Path], list[FileError]]:
    r = Path(root) if root is not None else None
    errors = _check_directory(d, r)
    if errors:
        return [], errors
    return _discover(d, r, Path(project_file) if project_file is not None else None)


# --------------------------------------------------------------------------------------------
# Loading

#: Called with each file that has no problem of its own, while its document is alive: ``fmt``
#: decides there whether the file is canonical (:mod:`reconciler.fmt`).
EachFile = Callable[[Path, str, Doc], None]


def load_dir(directory: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
             project_file: str | os.PathLike[str] | None = None, each: EachFile | None = None) -> LoadedSchemas:
    """Load and check every schema file under ``directory``; raise :class:`FilesError` with all problems.

    Which files: see :func:`schema_files`. Problems finding files and problems in files are
    reported together. Each file is read once (see ``each``: :data:`EachFile`).
    """
    d = Path(directory)
    if not os.path.lexists(d):
        return LoadedSchemas(d, {}, {}, missing=True)
    paths, errors = _files_of(d, root, project_file)
    return _load_paths(d, paths, errors, each)


def _load_paths(d: Path, paths: list[Path], found: Sequence[FileError] = (),
                each: EachFile | None = None) -> LoadedSchemas:
    parsed: list[_Parsed] = []
    for path in paths:
        text, errors = read_text(path)
        doc = None
        if text is not None:
            doc, errors = read_yaml(path, text=text)
        p = _Parsed(path, errors=errors) if doc is None else _check_document(path, doc)
        if each is not None and doc is not None and text is not None and not p.errors:
            each(path, text, doc)
        parsed.append(p)
        del doc  # the document is dropped here, file by file (see _Parsed)
    _check_all(parsed)
    errors = [*found, *(e for p in parsed for e in p.errors)]
    if errors:
        raise FilesError(errors)
    schemas = {p.schema.slug: p.schema for p in parsed if p.schema is not None}
    sources = {p.schema.slug: p.path for p in parsed if p.schema is not None}
    return LoadedSchemas(d, schemas, sources)


def load_file(path: str | os.PathLike[str]) -> Schema:
    """Load and check one schema file (relationships to custom schemas are not checked)."""
    p = Path(path)
    return _load_paths(p.parent, [p]).schemas.popitem()[1]


def load_text(text: str, path: str | os.PathLike[str] = "<text>") -> Schema:
    """Load and check a schema from YAML text; errors are reported against ``path``."""
    p = Path(path)
    doc, errors = read_yaml(p, text=text)
    parsed = _Parsed(p, errors=errors) if doc is None else _check_document(p, doc)
    _check_all([parsed])
    if parsed.errors or parsed.schema is None:
        raise FilesError(parsed.errors)
    return parsed.schema
