"""``apply``: gates, confirmation, the writes under a lock with interrupt handling, and the report."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli import common

if TYPE_CHECKING:
    from reconciler.applier import Approved
    from reconciler.config import Target
    from reconciler.files import LoadedSchemas
    from reconciler.plan import Plan
    from reconciler.planner import PlanOptions
    from reconciler.render.events import EventStream


class _Out:
    """Where apply reports: lines for a person on standard output, or, with ``--json``, events
    (JSON lines, :mod:`reconciler.render.events`) and nothing else there."""

    def __init__(self, events: EventStream | None) -> None:
        self.events = events

    def line(self, text: str = "") -> None:
        if self.events is None:
            click.echo(text)

    def event(self, type_: str, message: str, **data: Any) -> None:
        if self.events is not None:
            self.events.emit(type_, message, **data)

    def summary(self, outcome: str, message: str, code: int, counts: tuple[int, int, int] = (0, 0, 0)) -> None:
        added, changed, destroyed = counts
        self.event("summary", message, outcome=outcome, added=added, changed=changed, destroyed=destroyed,
                   exit_code=code)


def _other_target_hint(p: common.Project, plan_url: str | None) -> str:
    """What to pass so that a saved plan's account is the target (``--env production``)."""
    from reconciler.client import normalize_base_url
    from reconciler.config import SANDBOX_URL
    from reconciler.errors import ConfigError

    if plan_url == SANDBOX_URL:
        return "pass --sandbox"
    for name, entry in p.config.environments.items():
        try:
            if normalize_base_url(entry.url) == plan_url:
                return f"pass --env {name}"
        except ConfigError:
            continue
    return "plan again for this target"


@common.cli.command()
@common.global_options
@common.env_option
@common.account_options
@click.argument("planfile", required=False, type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (needed when not on a TTY).")
@click.option("--allow-data-loss", is_flag=True, help="Allow changes that delete records or field values (DL codes).")
@click.option("--preflight", is_flag=True,
              help="Check before writing: every update validated by the API (validateOnly) before any write, each "
                   "schema read again right before its first delete. The plan says what it costs.")
@click.option("--target", "targets", multiple=True, help="Apply only this schema slug (repeatable; globs).")
@click.option("--exclude", "excludes", multiple=True, help="Leave this schema slug out (repeatable; globs).")
@click.option("--no-backup", is_flag=True,
              help="Do not save the records a field or schema delete loses before deleting (said in the report).")
@click.option("--backup-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where backups go (default: .reconciler/backups/<UTC time>-<target>/).")
@click.option("--json", "json_out", is_flag=True,
              help="Report as JSON lines, one event each (version, target, planned, refused, step, summary); "
                   "needs --auto-approve or PLANFILE.")
@click.pass_obj
def apply(g: common.Globals, envs: tuple[str, ...], url: str | None, sandbox: bool, rate: float | None,
          timeout: float | None, planfile: Path | None, auto_approve: bool, allow_data_loss: bool,
          preflight: bool, targets: tuple[str, ...], excludes: tuple[str, ...], no_backup: bool,
          backup_dir: Path | None, json_out: bool) -> int:
    """Execute a fresh plan, or exactly the saved PLANFILE."""
    from reconciler.errors import ReconcilerError
    from reconciler.render.events import EVENTS_VERSION, EventStream

    if no_backup and backup_dir is not None:
        raise common.CommandError("--no-backup and --backup-dir contradict each other: pick one")
    if json_out and planfile is None and not auto_approve:
        raise common.CommandError("apply --json needs --auto-approve or a saved PLANFILE: it cannot ask for "
                                  "confirmation")
    out = _Out(EventStream(click.echo) if json_out else None)
    out.event("version", f"reconciler {common.__version__}", reconciler=common.__version__, events=EVENTS_VERSION)
    try:
        return _apply_command(g, out, envs, url, sandbox, rate, timeout, planfile, auto_approve, allow_data_loss,
                              preflight, targets, excludes, _Backups(no_backup, backup_dir))
    except (common.CommandError, ReconcilerError) as exc:
        out.summary("error", str(exc), getattr(exc, "code", common.EXIT_ERROR))
        raise


def _apply_command(g: common.Globals, out: _Out, envs: tuple[str, ...], url: str | None, sandbox: bool,
                   rate: float | None, timeout: float | None, planfile: Path | None, auto_approve: bool,
                   allow_data_loss: bool, preflight: bool, targets: tuple[str, ...], excludes: tuple[str, ...],
                   backups: _Backups) -> int:
    p = common.project_of(g)
    desired = common.load_desired(p)
    target = common.single_target(p, envs, url, sandbox, rate, "apply")
    common.say_target(target, "text" if out.events is None else "stderr")
    out.event("target", target.describe(), name=target.name, url=target.url)
    deadline = common.deadline_of(timeout)
    saved = planfile is not None
    if planfile is not None:
        if targets or excludes:
            raise common.CommandError("--target/--exclude cannot narrow a saved plan: it is applied exactly as planned")
        the_plan = common.read_plan(planfile)
        options = common.plan_options(p, target, (), (), desired.empty)  # apply narrows as the saved plan was
    else:
        options = common.plan_options(p, target, targets, excludes, desired.empty)
        # nobody reads the counts of a plan that is approved in advance, data loss included
        skip = ("apply --auto-approve --allow-data-loss does not wait for them"
                if auto_approve and allow_data_loss else None)
        the_plan = common.run_async(common.fresh_plan(target, desired, options, deadline, uncounted=skip))
        out.line(common.render_plan(the_plan, "text", g.use_color()))
    from reconciler.render.words import summary_line

    out.event("planned", summary_line(the_plan),
              summary=dict(the_plan.summary),
              changes=[{"key": c.key, "kind": c.kind, "action": c.act.name.lower(), "describe": c.describe}
                       for c in the_plan.changes])

    outcome: list[str] = []
    try:
        code = _apply_checked(g, out, p, target, the_plan, desired, options, allow_data_loss, saved, auto_approve,
                              preflight, deadline, outcome, planfile, backups)
    except common.CommandError as exc:
        outcome.append(_md("Apply failed: {}", str(exc)))
        raise
    finally:
        if outcome:
            applied = common.render_plan(the_plan, "markdown", False).replace("### Reconciler plan", "#### The plan", 1)
            common.step_summary("### Reconciler apply\n\n" + "\n\n".join(f"**{line}**" for line in outcome)
                          + "\n\n" + applied)
    return code


def _apply_checked(g: common.Globals, out: _Out, p: common.Project, target: Target, the_plan: Plan, desired: LoadedSchemas,
                   options: PlanOptions, allow_data_loss: bool, saved: bool, auto_approve: bool, preflight: bool,
                   deadline: common.Deadline | None, outcome: list[str], planfile: Path | None,
                   backups: _Backups) -> int:
    """Gates, confirmation and the writes; ``outcome`` gets the one-line result for the step summary
    (markdown: our own words, and any text from the API escaped by :func:`_md`)."""
    from reconciler.applier import ApplyRefused, WrongTarget, approve
    from reconciler.client import normalize_base_url

    try:
        approved = approve(the_plan, allow_data_loss=allow_data_loss,
                           saved_for=normalize_base_url(target.url, allow_http=True) if saved else None)
    except WrongTarget as exc:
        from reconciler.config import SANDBOX_URL

        def host(u: str | None) -> str:
            return "the local sandbox" if u in (SANDBOX_URL, f"{SANDBOX_URL}/api/3") else str(u).removesuffix("/api/3")

        raise common.CommandError(f"{planfile} was made for {host(exc.planned)}, not for {host(exc.actual)}: "
                           f"{_other_target_hint(p, exc.planned)}") from None
    except ApplyRefused as exc:
        _refused(exc.reasons, outcome)
        out.event("refused", "Apply refused; nothing was changed", reasons=list(exc.reasons))
        out.summary("refused", "Apply refused; nothing was changed.", common.EXIT_REFUSED)
        return common.EXIT_REFUSED
    if not the_plan.has_changes:
        if saved:
            out.line("No changes. The account matches the files.")
        outcome.append("No changes. The account matches the files.")
        out.summary("no_changes", "No changes. The account matches the files.", common.EXIT_OK)
        return common.EXIT_OK
    if not saved and not auto_approve:
        if not sys.stdin.isatty():
            raise common.CommandError("apply needs --auto-approve when not run on a terminal (or apply a saved plan file)")
        click.echo("\nDo you want to perform these actions? Only 'yes' will be accepted.")
        if click.prompt("  Enter a value", default="", show_default=False).strip() != "yes":
            click.echo("Apply cancelled.")
            outcome.append("Apply cancelled.")
            return common.EXIT_ERROR
    return common.run_async(_apply(g, out, p, target, approved, desired, options, saved, preflight, deadline,
                                   outcome, backups))


class _Backups:
    """``--no-backup`` / ``--backup-dir``: where apply saves the records its deletes lose, and the
    lines (and events) that say what was saved, each as soon as it is."""

    def __init__(self, skip: bool, directory: Path | None) -> None:
        self.skip = skip
        self.directory = directory

    def options(self, p: common.Project, target: Target, plan: Plan, out: _Out, outcome: list[str]) -> Any:
        from reconciler.backups import BackupOptions, backup_tasks
        from reconciler.records.backup import default_backup_dir

        def say(line: str, **data: Any) -> None:
            out.line(common.inert(line))
            out.event("backup", line, **data)
            outcome.append(_md("{}", line))

        def done(b: Any) -> None:
            what = b.slug if b.files and b.files[0].field is None else \
                ", ".join(f"{b.slug}.{f.field}" for f in b.files)
            say(f"Backup: {b.total:,} record{'s' if b.total != 1 else ''} of {what} in {b.directory}/",
                skipped=False, records=b.total, subject=what, directory=str(b.directory))

        if self.skip:
            if backup_tasks(plan):
                say("Backup: none (--no-backup): the values deleted are not saved anywhere.", skipped=True)
            return None
        return BackupOptions(self.directory or default_backup_dir(p.root, target.name), target_name=target.name,
                             on_done=done)


def _md(template: str, *values: str) -> str:
    """A step-summary line: ``template`` is ours, ``values`` are escaped (they may hold API error texts)."""
    from reconciler.render.markdown import md

    return md(template, *values)


def _refused(reasons: list[str], outcome: list[str]) -> None:
    common.err("Apply refused; nothing was changed:")
    for line in reasons:
        common.err(f"  {line}")
    outcome.append(_md("Apply refused; nothing was changed: {}", "; ".join(reasons)))


@contextmanager
def _interrupts(control: Any) -> Iterator[None]:
    """SIGINT and SIGTERM during the writes: the first stops new steps (said at once), the second
    cancels the requests in flight. Outside the writes both end the command as ``KeyboardInterrupt``."""
    import asyncio
    import contextlib

    loop = asyncio.get_running_loop()
    hits = 0

    def on_signal() -> None:
        nonlocal hits
        hits += 1
        n = control.in_flight
        if hits == 1:
            common.err(f"Interrupt received: finishing {n} request{'s' if n != 1 else ''} in flight, starting nothing "
                 "new (interrupt again to cancel them)")
            control.stop.set()
        else:
            common.err(f"Second interrupt: cancelling {n} request{'s' if n != 1 else ''} in flight")
            control.abort.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread / Windows
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)  # puts back SIG_DFL for SIGTERM, not our handler:
        if signal.SIGTERM in installed:
            signal.signal(signal.SIGTERM, common.sigterm_handler)  # the rest of the command stops as on Ctrl-C


async def _apply(g: common.Globals, out: _Out, p: common.Project, target: Target, approved: Approved, desired: LoadedSchemas,
                 options: PlanOptions, saved: bool, preflight: bool, deadline: common.Deadline | None,
                 outcome: list[str], backups: _Backups) -> int:
    from reconciler.applier import (
        ApplyControl,
        BackupFailed,
        PreflightFailed,
        PreflightIncomplete,
        StalePlan,
        StepResult,
        apply_plan,
    )
    from reconciler.lock import apply_lock
    from reconciler.records.migrate import default_migrations_dir

    control = ApplyControl()

    def progress(r: StepResult) -> None:
        mark = {"done": "done", "failed": "FAILED"}.get(r.status, r.status)
        for change in r.step.changes:
            text = f"{r.step.slug}: {change.action} {change.describe} … {mark} {r.elapsed:.2f}s"
            out.line(common.inert(text))
            out.event("step", text, key=change.key, kind=change.kind, action=change.act.name.lower(),
                      slug=r.step.slug, describe=change.describe, status=r.status, elapsed_s=round(r.elapsed, 3),
                      error=r.error)
        if r.error:
            out.line(common.inert(f"    {r.error}"))
        if r.detail:
            out.line(common.inert(f"    {r.detail}"))

    shown: dict[str, int] = {}

    def copy_progress(c: Any) -> None:
        """A copy's progress, at every tenth of its records (and at the end)."""
        from reconciler.errors import format_seconds

        tenth = 10 if c.done >= c.total else (10 * c.done) // max(c.total, 1)
        if shown.get(c.subject) == tenth:
            return
        shown[c.subject] = tenth
        eta = f", about {format_seconds(c.eta_seconds)} left" if c.eta_seconds and c.done < c.total else ""
        text = f"{c.subject}: {c.done:,} of {c.total:,} records read, {c.copied:,} copied{eta}"
        out.line(common.inert(text))
        out.event("copy", text, subject=c.subject, done=c.done, total=c.total, copied=c.copied,
                  eta_s=c.eta_seconds)

    try:
        with apply_lock(target.url, target.db_path), _interrupts(control):
            def waited(line: str) -> None:
                common.err(line)
                out.event("wait", line)

            async with common.client_for(target, deadline, on_wait=waited) as client:
                result = await apply_plan(
                    approved, client, desired=desired.schemas, options=options, saved=saved, on_step=progress,
                    control=control, preflight=preflight,
                    backup=backups.options(p, target, approved.plan, out, outcome),
                    migrations_dir=default_migrations_dir(p.root, target.url), on_copy=copy_progress,
                )
    except (StalePlan, PreflightFailed, BackupFailed) as exc:
        raise common.CommandError(f"{exc}. Nothing was changed.") from None
    except PreflightIncomplete as exc:
        raise common.CommandError(str(exc)) from None

    if result.required_line:  # the account ignores required: said once, remembered for this target
        from reconciler.errors import ReconcilerError
        from reconciler.quirks import record_required_ignored

        out.line(common.inert(result.required_line))
        outcome.append(_md("{}", result.required_line))
        if target.required is None:
            try:
                record_required_ignored(target.url, p.root)
            except (OSError, ReconcilerError) as exc:
                common.err(f"Warning: not recorded in .reconciler/quirks.json: {exc}")
    added, changed, destroyed = result.counts()
    counts = f"{added} added, {changed} changed, {destroyed} destroyed"
    if result.stopped:
        out.line("")
        out.line("Apply stopped" + (" (interrupted)" if result.interrupted else "") + ":")
        for r in result.results:
            for change in r.step.changes:
                detail = f": {r.error}" if r.error else ""
                out.line(common.inert(f"  {r.status:<11} {r.step.slug}: {change.describe}{detail}"))
        out.line(f"Resources: {counts}. Run `reconciler plan` to see what is left; `apply` again converges.")
        outcome.append(f"Apply stopped: {counts}. Run apply again to converge.")
        out.summary("interrupted" if result.interrupted else "stopped",
                    f"Apply stopped: {counts}. Run apply again to converge.", common.EXIT_ERROR, result.counts())
        return common.EXIT_ERROR
    if result.verify_error is not None:
        out.line("")
        out.line(common.inert(f"Resources: {counts}, but the account could not be read back to verify them: "
                          f"{result.verify_error}"))
        out.line("Run `reconciler plan` to check; `apply` again converges.")
        outcome.append("The writes were done but could not be verified.")
        out.summary("unverified", f"Resources: {counts}, but the account could not be read back to verify them: "
                    f"{result.verify_error}", common.EXIT_ERROR, result.counts())
        return common.EXIT_ERROR
    if not result.verified:
        out.line("")
        out.line("The account still differs from the files after the writes:")
        assert result.remaining is not None
        out.line(common.render_plan(result.remaining, "text", g.use_color()))
        outcome.append("The account still differs from the files after the writes.")
        out.summary("differs", "The account still differs from the files after the writes.", common.EXIT_ERROR,
                    result.counts())
        return common.EXIT_ERROR
    out.line("")
    out.line(f"Apply complete! Resources: {counts}.")
    outcome.append(f"Apply complete! Resources: {counts}.")
    out.summary("applied", f"Apply complete! Resources: {counts}.", common.EXIT_OK, result.counts())
    return common.EXIT_OK


