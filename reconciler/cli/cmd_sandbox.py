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
    """A listening socket for ``sandbox serve`` and ``sandbox ui`` (port 0: a free one), or one line saying why not."""
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
        sock.listen(128)  # connections made after the printed line wait in the backlog for the server
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
    click.echo(f"Sandbox listening on http://{shown}:{bound}/api/3 ({db or 'in memory'}, profile {profile}); "
               f"web interface on http://{shown}:{bound}/", err=True)
    run_server(sock=sock, db=str(db) if db else None, settings=settings)
    return common.EXIT_OK




def _embedded_db(g: common.Globals) -> Path:
    """The embedded sandbox's file of the project (``.reconciler/sandbox.sqlite3``), which must exist."""
    from reconciler.config import SANDBOX_DB

    p = common.project_of(g)
    db = p.root / SANDBOX_DB
    if not db.is_file():
        raise common.CommandError(f"no embedded sandbox at {db}: `reconciler apply --sandbox` makes one")
    return db


@sandbox.command("seed-records")
@common.global_options
@click.argument("slug")
@click.option("--count", required=True, type=click.IntRange(1, 1_000_000), help="How many records to create.")
@click.option("--fill", default=0.3, show_default=True, type=click.FloatRange(0.0, 1.0),
              help="Share of records given a value in each optional field.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same records.")
@click.option("--url", default=None, metavar="URL",
              help="A served sandbox (`reconciler sandbox serve`) instead of the embedded one; its token "
                   "comes from AC_API_TOKEN (default: sandbox-token). A real account is refused.")
@click.pass_obj
def seed_records(g: common.Globals, slug: str, count: int, fill: float, seed: int, url: str | None) -> int:
    """Put COUNT generated records into the sandbox schema SLUG, to try data-loss plans locally."""
    import os

    from reconciler.config import SANDBOX_TOKEN
    from reconciler.sandbox import seedrecords

    try:
        if url:
            token = os.environ.get("AC_API_TOKEN") or SANDBOX_TOKEN
            result = seedrecords.seed_records_http(url, token, slug, count, fill, seed)
            where = url
        else:
            from reconciler.sandbox.store import Store

            db = _embedded_db(g)
            store = Store(str(db))
            try:
                result = seedrecords.seed_records(store, slug, count, fill, seed)
            finally:
                store.close()
            where = "the embedded sandbox"
    except seedrecords.SeedError as exc:
        raise common.CommandError(str(exc)) from None
    filled = ", ".join(f"{fid} {n:,}" for fid, n in result.filled.items())
    contacts = f" ({result.contacts:,} contacts)" if result.contacts else ""
    click.echo(f"Seeded {result.created:,} records into {slug} in {where}{contacts}; values per field: {filled}")
    return common.EXIT_OK


@sandbox.command()
@common.global_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535),
              help="0 picks a free port (printed).")
@click.option("--token", default=None, help="The token the pages ask for (default: sandbox-token, the embedded "
                                            "sandbox's own).")
@click.pass_obj
def ui(g: common.Globals, host: str, port: int, token: str | None) -> int:
    """Browse the embedded sandbox's schemas, records, contacts and requests in a web browser."""
    from reconciler.config import SANDBOX_TOKEN
    from reconciler.sandbox import SandboxSettings
    from reconciler.sandbox.server import serve as run_server

    db = _embedded_db(g)
    settings = SandboxSettings(token=token or SANDBOX_TOKEN, rate_limit=0)
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    ask = "the token given with --token" if token else "the embedded sandbox's token (sandbox-token)"
    click.echo(f"Sandbox UI on http://{shown}:{bound}/ ({db}); log in with {ask}. Ctrl-C stops it.", err=True)
    run_server(sock=sock, db=str(db), settings=settings)
    return common.EXIT_OK
