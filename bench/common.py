"""What every benchmark item shares: medians, the command that runs reconciler, the machine, free ports.

Nothing here imports reconciler: the whole-command items (``bench/commands.py``) drive the CLI as a
user does and must not break when the library's internals move.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TOKEN", "Request", "Sandbox", "child_env", "classify", "free_port", "machine", "median",
           "reconciler_cmd", "summarize"]

TOKEN = "bench-token"  # the sandbox's Api-Token in every benchmark (a local emulator: not a secret)

# The variables a user's shell may carry that would change which account a child command talks to or
# how it prints; benchmarks set what they need explicitly.
_AMBIENT = ("CI", "AC_API_URL", "AC_API_TOKEN", "NO_COLOR", "FORCE_COLOR")


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def reconciler_cmd() -> list[str]:
    """The installed ``reconciler`` script next to this Python, else ``python -m reconciler``."""
    script = Path(sys.executable).with_name("reconciler")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without the ambient account, CI and colour variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _AMBIENT and not k.startswith("GITHUB_")}
    env.update(extra)
    return env


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    mem = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as fh:
        kb = next((int(ln.split()[1]) for ln in fh if ln.startswith("MemTotal")), 0)
        mem = f"{kb / 2**20:.1f} GiB"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"cores": str(os.cpu_count()), "memory": mem, "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "load average (1/5/15 min) at start": load}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# A served sandbox and its request log


# ``PUT /api/3/customObjects/schemas/… 200 12 ms`` (``fault X`` when one was injected): the line
# ``reconciler sandbox serve --log-requests`` prints on stderr for each request
_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) (\d{3}|-)(?: (\d+) ms)?(?: fault (\S+))?")
_LISTENING = re.compile(r"listening on http://\S+?:(\d+)/")


@dataclass(frozen=True)
class Request:
    """One logged request: when the parent read its line (``done``, perf_counter), how long it took."""

    method: str
    target: str  # path and query
    status: int | None
    elapsed_s: float
    fault: str | None
    done: float

    @property
    def start(self) -> float:
        return self.done - self.elapsed_s

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def classify(req: Request) -> str:
    """What a request is for, from its method and path (the API's paths, docs/api-notes.md §2 and §7)."""
    parts = req.path.strip("/").split("/")
    tail = parts[3:] if parts[:3] == ["api", "3", "customObjects"] else None
    if tail is None:
        return f"{req.method} other"
    if tail[:1] == ["records"]:
        return "GET records (impact counts)" if req.method == "GET" else f"{req.method} records"
    if tail[:1] != ["schemas"]:
        return f"{req.method} other"
    if len(tail) == 1:
        return {"GET": "GET schema list", "POST": "POST schema"}.get(req.method, f"{req.method} schemas")
    if len(tail) == 2:
        return {"GET": "GET schema", "PUT": "PUT schema", "DELETE": "DELETE schema"}.get(
            req.method, f"{req.method} schema")
    if len(tail) == 4 and tail[2] == "fields" and req.method == "DELETE":
        return "DELETE field"
    return f"{req.method} other"


def summarize(reqs: Sequence[Request]) -> dict[str, Any]:
    """Requests by kind, 429s, and the PUTs sent more than once to the same schema (the update
    preflight sends its ``validateOnly`` in a header, which the log line does not show: a second PUT
    to a schema within one command is how it shows)."""
    kinds = Counter(classify(r) for r in reqs)
    puts = Counter(r.path for r in reqs if classify(r) == "PUT schema")
    gets = Counter(r.path for r in reqs if classify(r) == "GET schema")
    sequence: list[list[Any]] = []  # the requests in order, runs of one kind folded: [[kind, count], …]
    for r in sorted(reqs, key=lambda r: r.start):
        k = classify(r) + (f" {r.status}" if r.status is None or r.status >= 400 else "")
        if sequence and sequence[-1][0] == k:
            sequence[-1][1] += 1
        else:
            sequence.append([k, 1])
    return {"requests": len(reqs), "by_kind": dict(sorted(kinds.items())), "sequence": sequence,
            "by_method": dict(sorted(Counter(r.method for r in reqs).items())),
            "429s": sum(1 for r in reqs if r.status == 429),
            "errors": sum(1 for r in reqs if r.status is None or r.status >= 400),
            "faults": sum(1 for r in reqs if r.fault),
            "put_schemas": len(puts), "put_repeats": sum(puts.values()) - len(puts),
            "get_schemas": len(gets)}


class Sandbox:
    """``reconciler sandbox serve`` on ``db`` in a child process, its request lines read as they come.

    ``rate`` 0 turns the limit off; ``faults`` is a ``--faults`` SPEC. ``requests(mark)`` gives
    the requests logged since ``mark()``. A context manager: the child is stopped on exit.
    """

    def __init__(self, db: Path, rate: float, faults: str = "", *, log: bool = True, token: str = TOKEN) -> None:
        cmd = [*reconciler_cmd(), "sandbox", "serve", "--port", "0", "--db", str(db), "--token", token,
               "--rate-limit", f"{rate:g}"]
        if faults:
            cmd += ["--faults", faults]
        if log:
            cmd.append("--log-requests")
        self._log: list[Request] = []
        self._other: list[str] = []
        self._lock = threading.Lock()
        self._port: int | None = None
        self._ready = threading.Event()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=db.parent,
                                     env=child_env(), text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url = self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            now = time.perf_counter()
            m = _LINE.match(line)
            with self._lock:
                if m:
                    status = None if m.group(3) == "-" else int(m.group(3))
                    self._log.append(Request(m.group(1), m.group(2), status, int(m.group(4) or 0) / 1000,
                                             m.group(5), now))
                else:
                    self._other.append(line.rstrip("\n"))
                    lm = _LISTENING.search(line)
                    if lm and self._port is None:
                        self._port = int(lm.group(1))
                        self._ready.set()
        self._ready.set()

    def _wait_ready(self, timeout: float = 30.0) -> str:
        if not self._ready.wait(timeout) or self._port is None:
            raise RuntimeError(f"the sandbox did not start: {' | '.join(self._other)[-500:]}")
        deadline = time.monotonic() + timeout
        while True:  # a TCP connect, not a request: it costs no rate-limit token
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self._port), timeout=0.2):
                return f"http://127.0.0.1:{self._port}"
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start: {' | '.join(self._other)[-500:]}")
            time.sleep(0.02)

    def mark(self) -> int:
        with self._lock:
            return len(self._log)

    def requests(self, since: int = 0, settle: float = 0.05) -> list[Request]:
        """The requests logged since ``since``; waits until no new line came for ``settle`` seconds
        (a line is printed just after its response is sent)."""
        n = -1
        while True:
            with self._lock:
                if len(self._log) == n:
                    return self._log[since:]
                n = len(self._log)
            time.sleep(settle)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
