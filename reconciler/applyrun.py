"""One apply run (:class:`Run`): the stages one after the other, each step's write, its race checks,
read-backs after lost answers, and the verification read at the end. :func:`reconciler.applier.apply_plan`
starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.backups import BackupOptions, backup_tasks, take_backups
from reconciler.client import Client
from reconciler.conversions import by_name
from reconciler.errors import ApiError, AuthenticationFailed, DeadlineExceeded, NotFound, ValidationFailed
from reconciler.gates import PlanMismatch, check_fresh, check_target, expected_fingerprints, first_difference
from reconciler.model import Schema
from reconciler.plan import CopyField, Plan, UpdateField, fingerprint
from reconciler.plan import desired_digest as digest_of_desired
from reconciler.planner import PlanOptions
from reconciler.planner import plan as make_plan
from reconciler.props import Prop
from reconciler.records.migrate import (
    CopyProgress,
    CopyResult,
    copy_field,
    default_migrations_dir,
    journal_path,
)
from reconciler.stages import Step, StepMethod, build_stages, field_deletes_to_probe
from reconciler.steps import (
    UNKNOWN,
    ApplyControl,
    ApplyResult,
    NeedsAdmin,
    StepResult,
    open_on,
    outside,
    preflight_updates,
    race_message,
    run_step,
    sent_required,
    slug_taken,
    step_subjects,
    text_of,
)

__all__ = ["Run"]


class Run:
    """One apply: the steps, what each became, and what the next write to each schema expects."""

    def __init__(self, plan: Plan, client: Client, desired: Mapping[str, Schema], options: PlanOptions,
                 control: ApplyControl, on_step: Callable[[StepResult], None] | None, concurrency: int,
                 saved: bool, files_digest: str | None, preflight: bool, backup: BackupOptions | None = None,
                 migrations: Path | None = None, on_copy: Callable[[CopyProgress], None] | None = None):
        self.plan = plan
        #: the directory of the copies' journals (``.reconciler/migrations/<target>``)
        self.migrations = migrations if migrations is not None else default_migrations_dir(Path.cwd(),
                                                                                             client.base_url)
        self.on_copy = on_copy
        self.copied: dict[str, CopyResult] = {}  # subject -> what its copy step did
        self.client = client
        self.desired = desired
        self.options = options
        self.control = control
        self.on_step = on_step
        self.gate = asyncio.Semaphore(concurrency)
        self.saved = saved
        self.files_digest = files_digest
        self.preflight = preflight
        self.backup = backup
        self.backups: list[Any] = []  # the backups made before the first write (records.backup.Backup)
        self.steps: list[Step] = []
        self.results: list[StepResult | None] = []
        self.writing: set[int] = set()  # steps whose write was sent (their outcome is open until settled)
        self.created: dict[str, str] = {}  # slug -> id of the schemas created by this run
        self.expected: dict[str, str] = {}  # schema id -> fingerprint the next write to it expects
        self.known: dict[str, Schema] = {}  # schema id -> as last read or answered (the write's "before")
        self.last_write: dict[str, int] = {}  # schema id -> the step that wrote it last
        #: schema id -> schema of a read of the account that no write followed yet (the next check)
        self.listed: dict[str, Schema] | None = None
        self.rechecked: set[str] = set()  # schemas read again before their first destructive write
        self.locks: dict[str, asyncio.Lock] = {}
        self.pairing = asyncio.Lock()  # held from a destructive step's GET until its write is queued
        self.halted = False  # a step failed: start nothing new
        self.required_ignored: dict[str, None] = {}  # slug.field-id sent required, kept not required

    # -- the phases -----------------------------------------------------------------------------

    async def main(self) -> ApplyResult:
        given = self.plan  # a saved plan's record counts are not made again by the re-plan
        if self.saved:
            self.plan = await self._verify_saved()  # its read of the account is the first stage's check
        self._set_steps(self.plan)
        self.expected = expected_fingerprints(self.plan)
        # a copy the plan does not hold was found complete when it was planned (or was never due):
        # the read-backs and the verification do not plan it again
        self._copies_settled(self.plan)
        if self.steps and not self.control.interrupted:
            await self._check_admin(given)
            if self.preflight:
                await preflight_updates(self.client, self._stages)
                self.listed = None  # read again after the preflight's time
            if self.backup is not None and not self.control.interrupted:
                # before any write: a backup that fails (BackupFailed) leaves the account untouched;
                # the counts are the plan's as printed (a saved plan's are not made again)
                self.backups = await take_backups(self.client, backup_tasks(given), self.backup)
        for indices in self._stage_indices:
            if not self._stopping():
                await self._check_stage(indices)
            if self._stopping():
                for i in indices:
                    if self.results[i] is None:
                        self.results[i] = StepResult(self.steps[i], "not started")
                continue
            self.listed = None  # this stage writes: what was read before it is not the account after
            await asyncio.gather(*(self._run(i) for i in indices))
        return await self._finish()

    async def _check_stage(self, indices: Sequence[int]) -> None:
        """Before a stage that writes schemas that exist: one read of the account (unless the last
        read was made since the last write), and each schema the stage writes must show the
        fingerprint its next write expects. A schema that does not (or is gone) fails its first step
        with the race; the run then stops before this stage writes anything."""
        steps = [(i, self.steps[i]) for i in indices if self.steps[i].method is not StepMethod.CREATE]
        if not steps:
            return
        listed, self.listed = self.listed, None
        if listed is None:
            self.control.in_flight += 1
            try:
                listed = {s.id: s for s in await self.client.list_schemas() if s.id is not None}
            except Exception as exc:  # any failure stops the run and is reported
                self.halted = True
                i, step = steps[0]
                self._report(i, StepResult(step, "failed", error=(
                    f"could not read the account before writing to it: {text_of(exc)}; nothing was written to it")))
                return
            finally:
                self.control.in_flight -= 1
        seen: set[str] = set()
        for i, step in steps:
            schema_id = step.schema_id or self.created.get(step.slug)
            assert schema_id is not None  # a schema created by this run has its id: its create was done
            if schema_id in seen:
                continue
            seen.add(schema_id)
            now = listed.get(schema_id)
            if now is None or fingerprint(now) != self.expected.get(schema_id):
                self.halted = True
                self._report(i, StepResult(step, "failed", error=race_message(step.slug), race=True))
            else:
                self.known[schema_id] = now

    def _set_steps(self, plan: Plan) -> None:
        """The plan's stages; ``steps`` numbers their steps in order, ``_stage_indices`` each stage's."""
        self._stages = build_stages(plan)
        self._stage_indices: list[list[int]] = []
        self.steps = []
        for stage in self._stages:
            self._stage_indices.append(list(range(len(self.steps), len(self.steps) + len(stage))))
            self.steps.extend(stage)
        self.results = [None] * len(self.steps)

    async def _verify_saved(self) -> Plan:
        """The plan made again from the files and the account, if it equals the saved one. From
        then on the run plans (its read-backs, the verification) narrowed as the saved plan was."""
        plan = self.plan
        check_target(plan, self.client.base_url)
        listed = await self.client.list_schemas()
        live = {s.slug: s for s in listed}
        self.listed = {s.id: s for s in listed if s.id is not None}
        files = digest_of_desired(self.desired)
        if self.files_digest is not None and self.files_digest != files:
            raise PlanMismatch("the desired digest given does not match the desired schemas given")
        check_fresh(plan, live, desired_digest=files)
        narrowed = plan.narrowed_by
        self.options = dataclasses.replace(self.options, targets=narrowed.targets if narrowed else (),
                                           excludes=narrowed.excludes if narrowed else ())
        self._copies_settled(plan)
        again = make_plan(self.desired, live, dataclasses.replace(self.options, target_url=plan.target,
                                                                  created_at=plan.created_at))
        # a copy's record counts are the plan's reading, as its impacts are: not made again
        counted = {c.key: c.records for c in plan.changes if isinstance(c, CopyField) and c.records is not None}
        again = again.with_changes(c.with_copy(counted[c.key]) if isinstance(c, CopyField) and c.key in counted else c
                                   for c in again.changes)
        where = first_difference(plan, again)
        if where is not None:
            raise PlanMismatch(f"Saved plan does not match what the files and the account give now: {where} "
                               "(the file was edited, or made with other settings); plan again and review it")
        return again

    async def _check_admin(self, counted: Plan) -> None:
        """Raise :class:`NeedsAdmin` before any write when the plan deletes fields and the token is
        refused an admin-only read. A plan whose record counts were had (``counted``: a schema's
        total is an unfiltered records list) needs no further read; otherwise one count is asked for."""
        deletes = field_deletes_to_probe(self.plan, counted)
        if not deletes:
            return
        try:
            assert deletes[0].schema_id is not None
            await self.client.count_records(deletes[0].schema_id)
        except AuthenticationFailed as exc:
            if exc.needs_admin:
                raise NeedsAdmin([c.subject for c in deletes], exc) from None
        except (ApiError, DeadlineExceeded):
            return  # not a permission answer: the deletes are tried, their steps report

    def _detect_required(self, step: Step, answer: Schema | None) -> None:
        """Fields this step sent with ``required: true`` that the account's answer shows not required:
        the account ignores ``required``. From then on this run plans without it (the planner's
        ``required_managed``), so the read-backs and the verification accept those differences."""
        if answer is None:
            return
        sent = sent_required(step)
        found = [f"{step.slug}.{fid}" for fid in sent if (f := answer.field(fid)) is not None and not f.required]
        if not found:
            return
        self.required_ignored.update(dict.fromkeys(found))
        if self.options.required_managed:
            self.options = dataclasses.replace(self.options, required_managed=False,
                                               required_reason="detected by this apply")

    def _copies_settled(self, plan: Plan, unsettled: set[str] | None = None) -> None:
        """Plan from now on without the copies of the fields declared with ``migrate_from`` that
        ``plan`` does not copy (its count found them complete), nor those this run copied; only
        ``unsettled`` ones (their steps not done) are planned again."""
        declared = {f"{s.slug}.{f.id}" for s in self.desired.values() for f in s.fields if f.migrate_from}
        planned = {c.subject for c in plan.changes if isinstance(c, CopyField)}
        done = declared - (planned if unsettled is None else unsettled)
        self.options = dataclasses.replace(self.options, copies_done=self.options.copies_done | done)

    def _stopping(self) -> bool:
        return self.halted or self.control.interrupted

    def _report(self, i: int, res: StepResult) -> None:
        self.results[i] = res
        if self.on_step is not None:
            self.on_step(res)

    # -- one step -------------------------------------------------------------------------------

    async def _run(self, i: int) -> None:
        step = self.steps[i]
        lock = self.locks.setdefault(step.schema_id or f"new:{step.slug}", asyncio.Lock())
        async with lock, self.gate:  # one write at a time per schema: each checks what the last left
            if self._stopping():
                self.results[i] = StepResult(step, "not started")
                return
            entered = [False]
            try:
                res = await self._execute(i, step, entered)
            finally:
                if entered[0]:
                    self.control.in_flight -= 1
        if res.status == "not started":
            self.results[i] = res
        else:
            self._report(i, res)

    async def _execute(self, i: int, step: Step, entered: list[bool]) -> StepResult:
        """(Re-check,) write, and judge the answer. ``entered[0]`` is set once the step counts as in
        flight (it sends its first request)."""
        started = time.perf_counter()

        def result(status: str, error: str | None = None, **kw: Any) -> StepResult:
            return StepResult(step, status, time.perf_counter() - started, error, **kw)

        if step.method is StepMethod.COPY:
            self.control.in_flight += 1
            entered[0] = True
            return await self._copy(step, result)

        schema_id = step.schema_id or self.created.get(step.slug)
        # the schema as the stage's read or our previous write to it showed it (None: a create)
        before = self.known.get(schema_id) if schema_id is not None and step.method is not StepMethod.CREATE else None
        recheck = (self.preflight and step.method in (StepMethod.DELETE_FIELD, StepMethod.DELETE_SCHEMA)
                   and schema_id is not None and schema_id not in self.rechecked)
        # With ``preflight``, the schema is read right before its first destructive write: the GET
        # and the write are taken as a pair (``pairing``), so no other step's request queues for the
        # client's limiter between them; the pair ends once the write has queued for its token.
        async with self.pairing if recheck else contextlib.nullcontext():
            if self._stopping():  # stopped while this step waited for the pair
                return StepResult(step, "not started")
            self.control.in_flight += 1
            entered[0] = True
            if recheck:
                assert schema_id is not None
                self.rechecked.add(schema_id)
                try:
                    before = await self.client.get_schema(schema_id)
                except NotFound:
                    return self._race(step, result)
                except Exception as exc:  # any failure stops the run and is reported
                    self.halted = True
                    return result("failed", f'could not read schema "{step.slug}" before writing to it: '
                                            f"{text_of(exc)}; nothing was written to it")
                if fingerprint(before) != self.expected.get(schema_id):
                    return self._race(step, result)
                if self.control.interrupted:  # stopped during the check: this write is not started
                    return StepResult(step, "not started")
            self.writing.add(i)
            write = asyncio.ensure_future(run_step(self.client, step, self.created))
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                write.cancel()
                raise
        try:
            after = await write
        except ValidationFailed as exc:
            if step.method is StepMethod.CREATE and slug_taken(exc):
                self.writing.discard(i)
                return self._race(step, result)
            return await self._failed_write(i, exc, result)
        except Exception as exc:  # any failure stops new writes and is reported
            return await self._failed_write(i, exc, result)
        self.writing.discard(i)
        self._detect_required(step, after)
        if after is None and schema_id is not None:  # a schema delete answers with no schema
            self.known.pop(schema_id, None)
        if after is not None and after.id is not None:
            # A guess, true of the sandbox: the write's answer (PUT and field DELETE with
            # ?showFields=all; the create's POST, for which showFields is not documented) shows the
            # schema exactly as the list ?showFields=all of the next check will, so equal
            # fingerprints mean "unchanged". If the real API differs, the next check reports a race
            # that is not one (safe: it stops, it does not write).
            self.expected[after.id] = fingerprint(after)
            self.known[after.id] = after
            self.last_write[after.id] = i
            if before is not None and self._landed_on_a_change(step, before, after):
                # the answer shows a write of someone else's since the schema was last seen: ours
                # is in, merged with theirs; nothing more is written to the schema
                self.halted = True
                return result("done", race_message(step.slug), race=True)
        return result("done")

    async def _copy(self, step: Step, result: Callable[..., StepResult]) -> StepResult:
        """A copy step: the records copied (:func:`reconciler.records.migrate.copy_field`), its
        journal under :attr:`migrations`. Done only when the copy went through to its count check."""
        change = step.changes[0]
        assert isinstance(change, CopyField) and change.schema_id is not None
        conversion = by_name(change.conversion)
        assert conversion is not None, change.conversion
        journal = journal_path(self.migrations, change.slug, change.field_id)
        try:
            copied = await copy_field(self.client, change.schema_id, change.slug, change.from_field, change.after,
                                      conversion, journal, on_progress=self.on_copy,
                                      should_stop=lambda: self.control.interrupted)
        except Exception as exc:  # any failure stops the run and is reported; the journal keeps what was done
            self.halted = True
            return result("failed", f"{text_of(exc)}; apply again resumes the copy")
        self.copied[change.subject] = copied
        if copied.interrupted:
            return result("failed", f"interrupted after {copied.summary()}; apply again resumes the copy")
        return result("done", detail=copied.summary())

    def _race(self, step: Step, result: Callable[..., StepResult]) -> StepResult:
        self.halted = True
        return result("failed", race_message(step.slug), race=True)

    async def _failed_write(self, i: int, exc: Exception, result: Callable[..., StepResult]) -> StepResult:
        """A write that raised: read the schema back; done if the account shows it done (a lost
        answer), failed if not, unknown if it cannot be read (its write stays in ``writing``)."""
        step = self.steps[i]
        text = text_of(exc)
        try:
            done, now = await self._read_back(step)
        except Exception as again:  # the outcome stays open, the run stops
            self.halted = True
            return result("unknown", f"{text}; could not read it back ({text_of(again)}); {UNKNOWN}")
        if done:
            if now is not None and now.id is not None:
                self.expected[now.id] = fingerprint(now)
                self.known[now.id] = now
                self.last_write[now.id] = i
                if step.method is StepMethod.CREATE:
                    self.created[step.slug] = now.id
            self.writing.discard(i)
            return result("done", confirmed=True)
        self.halted = True
        self.writing.discard(i)
        return result("failed", text)

    async def _read_back(self, step: Step) -> tuple[bool, Schema | None]:
        """(is the step's effect in the account?, the schema as read now)."""
        if step.method is StepMethod.CREATE:
            now = await self.client.find_schema_by_slug(step.slug)
            return (now is not None and not self._still_open(step, now)), now
        schema_id = step.schema_id or self.created.get(step.slug)
        assert schema_id is not None
        try:
            now = await self.client.get_schema(schema_id)
        except NotFound:
            return step.method is StepMethod.DELETE_SCHEMA, None
        if step.method is StepMethod.DELETE_SCHEMA:
            return False, now
        if step.method is StepMethod.DELETE_FIELD:
            assert step.field_id is not None
            return now.field(step.field_id) is None, now
        return not self._still_open(step, now), now

    def _landed_on_a_change(self, step: Step, checked: Schema, after: Schema) -> bool:
        """Does our write's answer show more than our write did to the schema as last seen? Outside
        what the step writes it must be as checked, and what it writes must be as the files say."""
        if outside(step, checked) != outside(step, after):
            return True
        if step.method is StepMethod.DELETE_FIELD:
            assert step.field_id is not None
            return after.field(step.field_id) is not None
        return self._still_open(step, after)

    def _still_open(self, step: Step, now: Schema) -> bool:
        """Does a plan of this one schema (files vs ``now``) still want what the step does?"""
        want = self.desired.get(step.slug)
        if want is None:
            return True
        # the schema only: a copy of its records (same subject as the new field's add) is not asked about
        copies = frozenset(f"{want.slug}.{f.id}" for f in want.fields if f.migrate_from)
        options = dataclasses.replace(self.options, targets=(), excludes=(), prune=False,
                                      desired_is_empty_dir=False, copies_done=self.options.copies_done | copies)
        return open_on(make_plan({want.slug: want}, {now.slug: now}, options), step_subjects(step))

    # -- the end --------------------------------------------------------------------------------

    async def _finish(self) -> ApplyResult:
        result = ApplyResult(results=[r if r is not None else StepResult(s, "not started")
                                      for s, r in zip(self.steps, self.results, strict=True)])
        result.interrupted = self.control.interrupted
        result.required_ignored = tuple(self.required_ignored)
        result.backups = list(self.backups)
        if result.interrupted:  # never verified: the user asked to stop, not to wait for a read
            if not (result.failed or result.not_started or result.unknown):
                result.verify_error = "the run was interrupted before the account was read back"
            return result
        if result.stopped and not result.unknown:  # failed or raced: nothing open to settle
            return result
        self._copies_settled(self.plan, {r.step.changes[0].subject for r in result.results
                                         if r.step.method is StepMethod.COPY and r.status != "done"})
        try:
            live_after = await self._read_after()
        except (ApiError, DeadlineExceeded) as exc:  # the writes are done: report them, unverified
            result.verify_error = str(exc)
            return result
        again = make_plan(self.desired, live_after, self.options)
        if again.has_changes and self._required_only(result, again):
            again = make_plan(self.desired, live_after, self.options)  # now without required
        result.required_ignored = tuple(self.required_ignored)
        result.verified = not again.has_changes and not again.has_errors
        if not result.verified:
            result.remaining = again
            self._changed_after(result, again, live_after)
        self._settle(result, again)
        return result

    async def _read_after(self) -> dict[str, Schema]:
        """The account after the writes, by slug: the list, and each schema this run wrote or deleted
        read by id where the list does not show what our last write to it left. The API's lists may
        lag the writes (eventual consistency is reported for record lists, S10; for schema lists it
        is not documented); a read by id is taken to be current (a guess)."""
        listed = await self.client.list_schemas()
        by_id = {s.id: s for s in listed if s.id is not None}
        deleted = {r.step.schema_id for r in self.results if r is not None and r.status == "done"
                   and r.step.method is StepMethod.DELETE_SCHEMA and r.step.schema_id is not None}
        check = [sid for sid in self.last_write
                 if sid not in deleted and (sid not in by_id or fingerprint(by_id[sid]) != self.expected.get(sid))]
        check += [sid for sid in deleted if sid in by_id]

        async def current(schema_id: str) -> tuple[str, Schema | None]:
            try:
                return schema_id, await self.client.get_schema(schema_id)
            except NotFound:
                return schema_id, None

        for schema_id, now in await asyncio.gather(*(current(sid) for sid in check)):
            if now is None:
                by_id.pop(schema_id, None)
            else:
                by_id[schema_id] = now
        return {s.slug: s for s in (*by_id.values(), *(s for s in listed if s.id is None))}

    def _required_only(self, result: ApplyResult, final: Plan) -> bool:
        """The verification's read shows fields that a done step sent with ``required: true`` as not
        required (the write's answer did not say): the account ignores ``required``. True when such
        fields were found (and this run now plans without ``required``)."""
        sent = {f"{r.step.slug}.{fid}" for r in result.results if r.status == "done" for fid in sent_required(r.step)}
        found = [c.subject for c in final.changes if isinstance(c, UpdateField) and c.changed == (Prop.REQUIRED,)
                 and c.subject in sent and c.after is not None and c.after.required]
        if not found or not self.options.required_managed:
            return False
        self.required_ignored.update(dict.fromkeys(found))
        self.options = dataclasses.replace(self.options, required_managed=False,
                                           required_reason="detected by this apply")
        return True

    def _changed_after(self, result: ApplyResult, final: Plan, live: Mapping[str, Schema]) -> None:
        """A schema we wrote that is not as the files say, and not as our last write left it: changed
        in the account after that write (another apply's write landed after ours). Its last step
        reports the race."""
        by_id = {s.id: s for s in live.values() if s.id is not None}
        for schema_id, i in self.last_write.items():
            now = by_id.get(schema_id)
            r = result.results[i]
            slug = now.slug if now is not None else r.step.slug
            if r.race or not (any(c.slug == slug for c in final.changes) or any(e.slug == slug for e in final.errors)):
                continue
            if now is None or fingerprint(now) != self.expected.get(schema_id):
                r.race, r.error = True, race_message(r.step.slug)

    def _settle(self, result: ApplyResult, final: Plan) -> None:
        """After a run with unknown outcomes, the final read decides them: an unknown step is done
        (confirmed) when the account shows its effect, failed when not. A failed or not started step
        whose effect the account shows anyway (someone else's write) is not needed."""
        for r in result.results:
            if r.status not in ("unknown", "failed", "not started"):
                continue
            if open_on(final, step_subjects(r.step)):
                if r.status == "unknown":
                    r.status = "failed"  # read back: not done
                continue
            if r.status == "unknown":
                r.status, r.confirmed = "done", True
            else:
                r.status = "not needed"

    def aborted(self) -> ApplyResult:
        """The result after ``abort``: steps whose write was out are unknown."""
        if not self.steps:
            self._set_steps(self.plan)
        results = []
        for i, step in enumerate(self.steps):
            r = self.results[i]
            if r is None:
                r = StepResult(step, "unknown", error=UNKNOWN) if i in self.writing else StepResult(step, "not started")
            results.append(r)
        return ApplyResult(results=results, interrupted=True, aborted=True, backups=list(self.backups),
                           verify_error="the run was aborted before the account was read back"
                           if all(r.status == "done" for r in results) else None)


