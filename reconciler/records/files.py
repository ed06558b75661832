"""Files that hold record data (customer data): created 0600 in directories created 0700, whatever
the umask, and written whole or not at all (a temporary file in the same directory, fsynced, then
renamed), so a crash never leaves half a backup under the final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.errors import ReconcilerError

__all__ = ["DIR_MODE", "FILE_MODE", "DataFileError", "Journal", "NdjsonWriter", "dumps", "make_private_dir", "read_journal", "sha256_of"]

FILE_MODE = 0o600
DIR_MODE = 0o700


class DataFileError(ReconcilerError):
    """A record data file or directory that cannot be written or read; one line naming it."""


def dumps(obj: Any) -> str:
    """One ndjson line's JSON: compact, UTF-8 as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def make_private_dir(path: Path) -> Path:
    """``path`` and any missing parents, each created 0700 (chmod after mkdir: the umask cannot widen
    or narrow it). An existing directory is used as it is."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise DataFileError(f"{p}: is not a directory")
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
            os.chmod(d, DIR_MODE)
        except OSError as exc:
            raise DataFileError(f"{d}: cannot create the directory ({exc.strerror or exc})") from None
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


class NdjsonWriter:
    """Lines written to a temporary 0600 file next to ``path``, renamed to ``path`` on :meth:`commit`
    (after an fsync); dropped if the block ends without a commit. ``sha256`` and ``count`` are those
    of what was written."""

    def __init__(self, path: Path, *, replace: bool = False) -> None:
        self.path = path
        self.count = 0
        self._digest = hashlib.sha256()
        if path.exists() and not replace:
            raise DataFileError(f"{path}: exists already; not overwritten")
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            os.fchmod(fd, FILE_MODE)
        except OSError as exc:
            raise DataFileError(f"{path}: cannot write ({exc.strerror or exc})") from None
        self._fh = os.fdopen(fd, "wb")

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def write_text(self, text: str) -> None:
        data = text.encode("utf-8")
        self._digest.update(data)
        self._fh.write(data)

    def write(self, obj: Any) -> None:
        self.write_text(dumps(obj) + "\n")
        self.count += 1

    def commit(self) -> None:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.discard()
            raise DataFileError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        _fsync_dir(self.path.parent)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)

    def __enter__(self) -> NdjsonWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._tmp.exists():
            self.discard()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Journal:
    """An append-only journal of JSON lines (restore, migrations): 0600, fsynced on :meth:`sync`."""

    def __init__(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
            os.fchmod(fd, FILE_MODE)
        except OSError as exc:
            raise DataFileError(f"{path}: cannot write the journal ({exc.strerror or exc})") from None
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def add(self, entry: Mapping[str, Any]) -> None:
        self._fh.write(dumps(entry) + "\n")

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sync()
        self._fh.close()


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The entries of the journal at ``path`` (none when it does not exist); a torn last line (a
    crash mid-write) and any line that is not an object are left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot read the journal ({getattr(exc, 'strerror', None) or exc})") from None
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
