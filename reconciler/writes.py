"""The one way reconciler writes a file: plan files, exports, ``fmt``, JSON Schema copies.

:func:`write_atomic` writes to a fresh temporary file in the target's own directory, fsyncs it,
and renames it over the target, so a reader sees the old file or the new one, never half of
either, and a crash leaves the old file in place. Before anything is written it refuses, with one
line (:class:`WriteRefused`):

* a target that exists and is not a regular file (a directory, a device such as ``/dev/full``
  or ``/dev/stdout``, a FIFO, a socket): renaming over it would replace the node itself;
* a target that is a symbolic link: the rename would replace the link, not the file it points at,
  which is rarely what was meant (write to the real path instead);
* a missing parent directory (it is not created: a typo in a path should not grow a tree).

``-`` is not a path here: callers that accept ``-`` for standard output handle it themselves.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from reconciler.errors import ReconcilerError

__all__ = ["WriteRefused", "check_writable", "write_atomic"]


class WriteRefused(ReconcilerError):
    """A file was not written because the path is unsuitable; ``str()`` is one line naming it."""


def check_writable(path: str | os.PathLike[str]) -> Path:
    """``path`` if :func:`write_atomic` may write it, else :class:`WriteRefused` (nothing is touched)."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise WriteRefused(f"{p}: cannot write ({exc.strerror or exc})") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise WriteRefused(f"{p}: is a symbolic link; not replaced (write to the file it points at)")
        if stat.S_ISDIR(st.st_mode):
            raise WriteRefused(f"{p}: is a directory; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise WriteRefused(f"{p}: is not a regular file (a device, FIFO or socket); not replaced"
                               " (use - to print to standard output)")
    parent = p.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise WriteRefused(f"{p}: the directory {parent}/ {what}")
    return p


def write_atomic(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically; see the module docstring.

    The file keeps the mode of the file it replaces; a new file gets ``mode`` (default: 0o666
    less the umask, as ``open`` would give).
    """
    p = check_writable(path)
    try:
        # the name is cut so that the temporary name fits where the target's name fits (255 bytes)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:100]}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:
        raise WriteRefused(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if p.exists():
            os.chmod(tmp, p.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise WriteRefused(f"{p}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(p.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
