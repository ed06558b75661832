"""What git knows about the schema files: when each was last committed, and whether it changed since.

Drift uses it as evidence of which side changed (:mod:`reconciler.drift`). It is evidence, never a
requirement: no ``git`` on the machine, files outside a work tree, a failing or slow ``git`` all give
"nothing known" (an empty result), never an error.

A constant number of ``git`` runs, whatever the number of files: ``rev-parse`` (work tree root, shallow
or not), ``status`` (uncommitted changes) and one ``log`` over the files' common directory, read as it
streams and stopped once every file has been seen.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileHistory", "file_histories"]

#: A ``git`` that has not answered by then is treated as absent.
TIMEOUT = 10.0


@dataclass(frozen=True)
class FileHistory:
    """One file as git sees it.

    ``committed``: the committer date (epoch seconds) of the last commit that touched the file, or
    None when unknown (never committed, or the commit is the boundary of a shallow clone, whose date
    says nothing about this file). ``modified``: the file's modification time (epoch seconds) when the
    work tree differs from the last commit (modified, staged or untracked), else None.
    """

    committed: float | None = None
    modified: float | None = None

    @property
    def known(self) -> bool:
        return self.committed is not None or self.modified is not None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"  # status must not take index.lock (a concurrent git would fail)
    env.pop("GIT_PAGER", None)
    return env


def _git(cwd: Path, *args: str, timeout: float) -> bytes | None:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=timeout,
                              env=_env(), stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _dirty(root: Path, spec: str, timeout: float) -> set[str] | None:
    """Root-relative paths (``/``-separated) with uncommitted changes or untracked, under ``spec``."""
    out = _git(root, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all",
               "--", spec, timeout=timeout)
    if out is None:
        return None
    dirty: set[str] = set()
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        dirty.add(os.fsdecode(entry[3:]))
        if b"R" in entry[:2] or b"C" in entry[:2]:  # a rename or copy: the next entry is the old path
            i += 1
    return dirty


def _last_commits(root: Path, spec: str, wanted: set[str], shallow: bool,
                  timeout: float) -> dict[str, float | None]:
    """The committer date of the last commit touching each of ``wanted`` (root-relative paths)."""
    try:
        proc = subprocess.Popen(
            ["git", "-C", str(root), "log", "--format=%x01%ct %P", "--name-only", "-z", "--", spec],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=_env())
    except OSError:
        return {}
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    found: dict[str, float | None] = {}
    when: float | None = None
    pending = b""
    try:
        assert proc.stdout is not None
        while len(found) < len(wanted):
            chunk = proc.stdout.read(65536)
            if not chunk:
                break
            tokens = (pending + chunk).split(b"\0")
            pending = tokens.pop()
            for token in tokens:
                if token.startswith(b"\x01"):
                    head = token[1:].split(b" ", 1)
                    parents = head[1].strip() if len(head) > 1 else b""
                    # the boundary of a shallow clone shows every file as added by it
                    when = None if shallow and not parents else float(head[0])
                    continue
                path = os.fsdecode(token.removeprefix(b"\n"))
                if path in wanted and path not in found:
                    found[path] = when
    except (OSError, ValueError):
        found = {}
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return found


def _root(directory: Path, timeout: float) -> tuple[Path, bool] | None:
    """The work tree holding ``directory`` and whether its clone is shallow; None outside git."""
    head = _git(directory, "rev-parse", "--show-toplevel", "--is-shallow-repository", timeout=timeout)
    lines = os.fsdecode(head).splitlines() if head is not None else []
    if len(lines) < 2:
        return None
    return Path(lines[0]).resolve(), lines[1].strip() == "true"


def _in_work_tree(root: Path, shallow: bool, files: dict[Path, Path], timeout: float) -> dict[Path, FileHistory]:
    """:func:`file_histories` for ``files`` (given path -> resolved path), all inside ``root``."""
    rel = {p: r.relative_to(root).as_posix() for p, r in files.items()}
    common = Path(os.path.commonpath([str(r.parent) for r in files.values()]))
    spec_dir = common.relative_to(root).as_posix()
    spec = ":(top)" if spec_dir == "." else f":(top,literal){spec_dir}"
    dirty = _dirty(root, spec, timeout)
    if dirty is None:
        return {}
    committed = _last_commits(root, spec, set(rel.values()), shallow, timeout)
    out: dict[Path, FileHistory] = {}
    for p, r in rel.items():
        modified = None
        if r in dirty:
            try:
                modified = files[p].stat().st_mtime
            except OSError:
                continue
        history = FileHistory(committed=committed.get(r), modified=modified)
        if history.known:
            out[p] = history
    return out


def file_histories(paths: Iterable[Path], *, timeout: float = TIMEOUT) -> dict[Path, FileHistory]:
    """What git knows of each of ``paths`` (keyed as given); files it knows nothing about are left out.

    One ``rev-parse`` per distinct directory (normally one: the schemas directory), then one
    ``status`` and one ``log`` per work tree.
    """
    resolved: dict[Path, Path] = {}
    for p in dict.fromkeys(paths):
        try:
            resolved[p] = p.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            continue
    roots: dict[Path, tuple[Path, bool] | None] = {}
    by_root: dict[tuple[Path, bool], dict[Path, Path]] = {}
    for p, r in resolved.items():
        if r.parent not in roots:
            roots[r.parent] = _root(r.parent, timeout)
        where = roots[r.parent]
        if where is None or not r.is_relative_to(where[0]):
            continue
        by_root.setdefault(where, {})[p] = r
    out: dict[Path, FileHistory] = {}
    for (root, shallow), files in by_root.items():
        out.update(_in_work_tree(root, shallow, files, timeout))
    return out
