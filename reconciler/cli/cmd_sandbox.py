"""``sandbox``: the embedded ActiveCampaign Custom Objects emulator, served over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler.cli import common


@common.cli.group()
def sandbox() -> None:
    """The embedded ActiveCampaign Custom Objects emulator."""


def _listen(host: str, port: int) -> Any:
    """A bound socket for ``sandbox serve`` (port 0: a free one), or one line saying why not."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise common.CommandError(f"cannot listen on {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise common.CommandError(f"port {port} on {host} is already in use: pick another with --port "
                               "(--port 0 picks a free one)") from None
        raise common.CommandError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="0 picks a free port (printed).")
@click.option("--db", type=click.Path(path_type=Path), help="SQLite file (default: in memory).")
@click.option("--token", default=None, help="The Api-Token clients must send (default: sandbox-token).")
@click.option("--rate-limit", default=None, type=float,
              help="Requests per second; 0 turns it off (default: the profile's, 5).")
@click.option("--faults", default="", help="Fault SPEC, e.g. 429=0.2,drop=0.05,latency=100ms.")
@click.option("--seed", default=None, type=int, help="Seed for reproducible faults (and shuffled lists).")
@click.option("--log-requests", is_flag=True, help="Print one line per request (method, path, status, time, fault).")
@click.option("--profile", type=click.Choice(["documented", "pessimistic"]), default="documented", show_default=True,
              help="How undocumented behaviour is emulated: as documented, or against the client.")
@click.option("--quirk", "quirks", multiple=True, metavar="NAME=VALUE",
              help="Set one quirk over the profile (repeatable; --list-quirks lists them).")
@click.option("--list-quirks", is_flag=True, help="List every quirk with both profiles' values and its source.")
def serve(host: str, port: int, db: Path | None, token: str | None, rate_limit: float | None, faults: str,
          seed: int | None, log_requests: bool, profile: str, quirks: tuple[str, ...], list_quirks: bool) -> int:
    """Run the emulator over HTTP."""
    from reconciler.sandbox import Faults, SandboxSettings
    from reconciler.sandbox.quirks import apply_quirks, table
    from reconciler.sandbox.server import serve as run_server

    if list_quirks:
        click.echo("\n".join(table()))
        return common.EXIT_OK
    try:
        Faults.parse(faults, seed)
        settings = apply_quirks(SandboxSettings.from_profile(profile), quirks)
    except ValueError as exc:
        raise common.CommandError(str(exc)) from None
    settings.faults, settings.fault_seed, settings.log_requests = faults, seed, log_requests
    if rate_limit is not None:
        settings.rate_limit = rate_limit
    if token:
        settings.token = token
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Sandbox listening on http://{shown}:{bound}/api/3 ({db or 'in memory'}, profile {profile})", err=True)
    run_server(sock=sock, db=str(db) if db else None, settings=settings)
    return common.EXIT_OK


