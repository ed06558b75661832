"""An advisory, per-machine lock per target, held for the writes of an apply.

``with apply_lock(target.url, target.db_path): ...`` makes a second apply to the same account
on the same machine fail at once with :class:`LockHeld`, instead of interleaving its writes with the
first one's. It is a courtesy between processes on one machine, not a guarantee: the API has no lock
and no conditional write, so applies from two machines (two CI runners) are not excluded by it. The
applier's per-schema fingerprint check (:mod:`reconciler.applier`) is what detects those.

The lock is ``fcntl.flock`` on a file named by a hash of the target (the API URL, plus the database
path for the embedded sandbox, whose URL is the same for every project) in a per-user directory:
``$XDG_RUNTIME_DIR/reconciler`` or ``<tempdir>/reconciler-<uid>``, mode 0700 and owned by the user. The
kernel drops a flock when its process dies, so a crashed apply never leaves a stale lock behind. The
file holds the holder's pid and start time, for the message. Where no lock can be taken (Windows, no
``fcntl``; a directory that cannot be made private; a file system without flock), the context
manager yields ``None`` and the apply runs unlocked: a missing courtesy is not worth refusing an apply.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ConfigError, ReconcilerError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ApplyLock", "LockHeld", "apply_lock", "lock_directory", "lock_key"]


class LockHeld(ReconcilerError):
    """Another apply to the same target holds the lock on this machine; nothing was written."""

    def __init__(self, target: str, pid: int | None, since: float | None):
        self.target = target
        self.pid = pid
        self.since = since
        who = f"pid {pid}" if pid is not None else "pid unknown"
        when = f", since {time.strftime('%H:%M:%S', time.localtime(since))}" if since is not None else ""
        super().__init__(f"another reconciler apply to {target} is running on this machine ({who}{when})")


@dataclass(frozen=True)
class ApplyLock:
    """A held lock: its file and the key it was taken for."""

    path: Path
    key: str


def lock_key(target_url: str, db_path: str | os.PathLike[str] | None = None) -> str:
    """What one lock covers: the normalised API URL, plus the real path of the sandbox database."""
    from reconciler.client import normalize_base_url

    try:
        key = normalize_base_url(target_url, allow_http=True)
    except ConfigError:
        key = target_url.strip()
    if db_path is not None:
        key += "\n" + os.path.realpath(os.fspath(db_path))
    return key


def lock_directory(environ: dict[str, str] | None = None) -> Path | None:
    """The per-user lock directory (made 0700 if missing), or ``None`` when it is not private to us."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "reconciler" if runtime else Path(tempfile.gettempdir()) / f"reconciler-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(base)
    except OSError:
        return None
    # in a shared temp dir another user could have made it first: use it only if it is ours and private
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return base


def _holder(fd: int) -> tuple[int | None, float | None]:
    """The pid and start time the holder wrote (``None`` parts when unreadable or half-written)."""
    try:
        data: Any = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    pid, since = data.get("pid"), data.get("since")
    return (pid if isinstance(pid, int) else None,
            float(since) if isinstance(since, (int, float)) else None)


def _take(path: Path, label: str) -> int | None:
    """The locked file descriptor; ``None`` when this file cannot be locked. Raises :class:`LockHeld`."""
    assert fcntl is not None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        held = exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
        pid, since = _holder(fd) if held else (None, None)
        os.close(fd)
        if held:
            raise LockHeld(label, pid, since) from None
        return None  # ENOLCK and the like: this file system cannot lock
    return fd


@contextlib.contextmanager
def apply_lock(target_url: str, db_path: str | os.PathLike[str] | None = None, *,
               directory: Path | None = None, label: str | None = None) -> Iterator[ApplyLock | None]:
    """Hold the apply lock of this target for the ``with`` block; raise :class:`LockHeld` at once if
    another process holds it. Yields ``None`` (no lock, no error) where locking is not possible.

    ``label`` is how the message names the target (default: ``target_url``).
    """
    key = lock_key(target_url, db_path)
    where = None if fcntl is None else directory if directory is not None else lock_directory()
    if where is None:
        yield None
        return
    path = where / f"apply-{hashlib.sha256(key.encode()).hexdigest()[:32]}.lock"
    fd = _take(path, label or target_url)
    if fd is None:
        yield None
        return
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
    except OSError:
        pass  # the lock holds without the holder's details; the message then says "pid unknown"
    try:
        yield ApplyLock(path, key)
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
