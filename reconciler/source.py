"""A YAML file's text, read defensively: size, kind of file, encoding, forbidden characters, tabs.

Schema files may come from a pull request. Everything here runs before any YAML parser sees the
text, and each problem is one :class:`~reconciler.fileerrors.FileError` line: a FIFO or a device is
never opened, a file over :data:`MAX_FILE_BYTES` never read, control and bidirectional characters
(which can make a terminal or an editor show other text than the file holds) refused.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from reconciler.fileerrors import FileError, capped

__all__ = [
    "FORBIDDEN",
    "MAX_FILE_BYTES",
    "char_name",
    "char_problem",
    "file_kind",
    "read_text",
    "size_error",
    "text_errors",
]

MAX_FILE_BYTES = 1 << 20
"""Largest YAML file read, 1 MiB; checked with ``stat`` before the file is opened. A hand-written
schema of 1,000 fields is about 150 KB. (The pure-Python YAML parser, used for files the fast
reader hands over, reads a dense 1 MiB file in some 20 s: the limit bounds the time.)"""

#: Characters no schema file may hold, as such or through a ``"\\e"`` escape: C0 controls but
#: tab and newline (a CR only as part of a CRLF line end), DEL, C1 controls, the bidirectional
#: overrides and isolates (they make a terminal or an editor show other text than the file holds),
#: and U+FFFE/U+FFFF, which YAML itself refuses.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]"
                       "|\r(?!\n)")

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def file_kind(mode: int) -> str:
    """``"a FIFO"``, ``"a directory"`` …: what a non-regular file is, for messages."""
    for test, name in _FILE_KINDS:
        if test(mode):
            return name
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


def size_error(path: Path, size: int) -> FileError:
    limit = f"{MAX_FILE_BYTES >> 20} MiB" if MAX_FILE_BYTES % (1 << 20) == 0 else f"{MAX_FILE_BYTES:,} bytes"
    return FileError(path, 0, 0, f"file is {size:,} bytes, over the size limit of {limit}; not read")


def _read_bytes(path: Path) -> tuple[bytes | None, list[FileError]]:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`, else one error.

    ``stat`` comes first, so a FIFO or a device is never opened; the open is non-blocking and the
    opened file is checked again, in case the path changed in between.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None, [FileError(path, 0, 0, f"is {file_kind(st.st_mode)}, not a file; not read")]
        if st.st_size > MAX_FILE_BYTES:
            return None, [size_error(path, st.st_size)]
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None, [FileError(path, 0, 0, f"is {file_kind(st.st_mode)}, not a file; not read")]
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, [FileError(path, 0, 0, f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [size_error(path, len(raw))]
    return raw, []


def _decode(path: Path, raw: bytes) -> tuple[str | None, list[FileError]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        return None, [FileError(path, line, col, f"file is not UTF-8 (invalid byte 0x{bad}); save it as UTF-8")]
    return text.removeprefix("\ufeff"), []


def read_text(path: str | os.PathLike[str]) -> tuple[str | None, list[FileError]]:
    """The text of a YAML file, within the size limit and decoded as UTF-8 (a BOM dropped)."""
    p = Path(path)
    raw, errors = _read_bytes(p)
    if raw is None:
        return None, errors
    return _decode(p, raw)


def char_name(ch: str) -> str:
    """``control character U+001B``, ``bidirectional control character U+202E`` …"""
    code = ord(ch)
    if 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        return f"bidirectional control character U+{code:04X}"
    if code in (0xFFFE, 0xFFFF):
        return f"noncharacter U+{code:04X}"
    return f"control character U+{code:04X}"


def char_problem(*chars: str) -> str:
    """The message for forbidden characters, e.g. ``control character U+001B is not allowed …``."""
    names = [char_name(ch) for ch in dict.fromkeys(chars)]
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    verb = "is" if len(names) == 1 else "are"
    return f"{shown} {verb} not allowed (it can hide or rewrite text on a terminal)"


def _control_errors(path: Path, text: str) -> list[FileError]:
    """Forbidden characters written as such: one error a line, at the first, naming each kind."""
    errors: list[FileError] = []
    line, counted = 1, 0
    m = FORBIDDEN.search(text)
    while m is not None:
        start = m.start()
        line += text.count("\n", counted, start)
        counted = start
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        chars = [found[0] for found in FORBIDDEN.findall(text, start, end)]
        errors.append(FileError(path, line, col, char_problem(*chars)))
        m = FORBIDDEN.search(text, end)
    return capped(path, errors, "lines hold forbidden characters")


def _tab_errors(path: Path, text: str) -> list[FileError]:
    """Tabs in indentation: YAML indents with spaces only."""
    if "\t" not in text:
        return []
    errors = []
    for n, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            errors.append(FileError(path, n, indent.index("\t") + 1,
                                    "tab character in indentation (YAML indents with spaces)"))
    return capped(path, errors, "lines are indented with tabs")


def text_errors(path: Path, text: str) -> list[FileError]:
    """Problems of the text as such: forbidden characters, tabs in indentation."""
    return _control_errors(path, text) + _tab_errors(path, text)
