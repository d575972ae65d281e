"""Background solves: a bounded pool of worker threads that claim queued plans and store their results.

A job is only a plan id on an in-process queue; the plan row is the truth. A worker claims the
plan (``store.claim_run``: queued → running, exactly one claimant wins), loads its datasets, solves them in
a worker process (``plan_for_usage``, or ``plan_for_history`` when the plan has a horizon; a process so the
CPU-bound solve does not hold the GIL the server's request threads need), and stores the plan JSON
(``store.finish_run``) or the error (``store.fail_run``). Each worker has its own session, so a
solve never holds a connection or lock that reads would wait on. On startup, plans left queued
(and, unless disabled, running: their process died) are queued again.
"""

from __future__ import annotations

import contextvars
import logging
import multiprocessing
import queue
import tempfile
import threading
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import store
from models import Commitment, PriceBook, UsageMatrix
from models.errors import InputError, PlanningError
from models.policy import Policy
from models.readers import read_existing, read_price_book, read_usage
from store import Actor, Plan, Role, RunStatus, Scenario
from store.models import Approval

log = logging.getLogger("commitplan.jobs")

WORKER = Actor("commitplan-worker", Role.ADMIN)
_STOP = object()


def _write(directory: Path, stem: str, content: bytes) -> Path:
    path = directory / (f"{stem}.csv.gz" if content[:2] == b"\x1f\x8b" else f"{stem}.csv")
    path.write_bytes(content)
    return path


def read_inputs(directory: Path, usage: bytes, prices: bytes, commitments: bytes | None,
                names: dict[str, str]) -> tuple[UsageMatrix, PriceBook, list[Commitment], dict[str, str]]:
    """(usage matrix, price book, held commitments, file → shown name) from a plan's stored files,
    written to ``directory``; an InputError names the dataset (``names``), not the temporary file."""
    usage_path, prices_path = _write(directory, "usage", usage), _write(directory, "prices", prices)
    shown = {str(usage_path): names["usage"], str(prices_path): names["prices"]}
    held: list[Commitment] = []
    try:
        book = read_price_book(prices_path)
        matrix = read_usage(usage_path, known_pools=set(book.on_demand))
        if commitments is not None:
            path = _write(directory, "commitments", commitments)
            shown[str(path)] = names["commitments"]
            held = read_existing(path, book)
    except InputError as e:
        raise InputError(shown.get(e.file, e.file), e.message, e.row, e.column) from None
    return matrix, book, held, shown


def solve_inputs(usage: bytes, prices: bytes, commitments: bytes | None, names: dict[str, str],
                 policy: dict | None, horizon_months: int | None, whatif: str | None = None) -> dict:
    """The plan JSON for a plan's input files (raises InputError / PlanningError / ValueError).

    Pure (no database): :class:`JobRunner` runs it in a worker process so a CPU-bound solve does not
    hold the server's GIL. ``names`` maps "usage"/"prices"/"commitments" to the names errors show.
    """
    with tempfile.TemporaryDirectory(prefix="commitplan-job-") as tmp:
        d = Path(tmp)
        matrix, book, held, shown = read_inputs(d, usage, prices, commitments, names)
        pol = Policy(**policy) if policy else None
        if horizon_months:
            from solver.future_plan import plan_for_history
            whatif_path = None
            if whatif is not None:
                whatif_path = d / "whatif.yaml"
                whatif_path.write_text(whatif, encoding="utf-8")
                shown[str(whatif_path)] = names["scenario"]
            try:
                result = plan_for_history(matrix, book, horizon_months, held, whatif=whatif_path, policy=pol)
            except InputError as e:
                raise InputError(shown.get(e.file, e.file), e.message, e.row, e.column) from None
        else:
            from solver.planner import plan_for_usage
            result = plan_for_usage(matrix, book, held, policy=pol)
    return result.model_dump(mode="json")


def _solve_in_worker(*args: object) -> tuple:
    """:func:`solve_inputs` in a worker process, its outcome as plain data (InputError does not unpickle)."""
    try:
        return ("ok", solve_inputs(*args))  # type: ignore[arg-type]
    except InputError as e:
        return ("input", e.file, e.message, e.row, e.column)
    except PlanningError as e:
        return ("planning", str(e))
    except ValueError as e:
        return ("value", str(e))
    except Exception as e:
        log.exception("solve failed in worker process")
        return ("internal", type(e).__name__, traceback.format_exc())


def _unwrap(outcome: tuple) -> dict:
    kind = outcome[0]
    if kind == "ok":
        return outcome[1]
    if kind == "input":
        raise InputError(*outcome[1:])
    if kind == "planning":
        raise PlanningError(outcome[1])
    if kind == "value":
        raise ValueError(outcome[1])
    raise WorkerError(outcome[1], outcome[2])


class Abandoned(Exception):
    """The solve process was stopped because the server is stopping: the plan stays running (re-queued on start)."""


class WorkerError(RuntimeError):
    """An unexpected exception in the solve process (its traceback is in ``details``)."""

    def __init__(self, name: str, details: str) -> None:
        super().__init__(f"{name} in the solve process")
        self.details = details


def solve(session: Session, plan: Plan, executor: Executor | None = None) -> dict:
    """The plan JSON for a stored plan's inputs (raises InputError / PlanningError / ValueError).

    Loads the datasets, ends the read transaction, then solves: in ``executor`` (a process pool)
    when given, else in this thread.
    """
    usage = store.dataset_content(session, plan.usage_dataset_id) or b""
    prices = store.dataset_content(session, plan.prices_dataset_id) or b""
    commitments = None
    names = {"usage": f"usage dataset {plan.usage_dataset_id}", "prices": f"prices dataset {plan.prices_dataset_id}"}
    if plan.commitments_dataset_id is not None:
        commitments = store.dataset_content(session, plan.commitments_dataset_id) or b""
        names["commitments"] = f"commitments dataset {plan.commitments_dataset_id}"
    whatif = None
    if plan.scenario_id is not None:
        scenario = session.get(Scenario, plan.scenario_id)
        whatif, names["scenario"] = scenario.yaml_text, f"scenario {scenario.name} ({scenario.id})"
    args = (usage, prices, commitments, names, dict(plan.policy) if plan.policy else None, plan.horizon_months, whatif)
    session.commit()  # release the read transaction before the (long) solve
    if executor is None:
        return solve_inputs(*args)
    try:
        outcome = executor.submit(_solve_in_worker, *args).result()
    except BrokenProcessPool as e:  # the worker died (killed, out of memory): not the input's fault
        if getattr(executor, "commitplan_stopping", False):
            raise Abandoned() from None
        raise WorkerError("BrokenProcessPool", str(e)) from None
    return _unwrap(outcome)


def run_one(sessions: sessionmaker[Session], plan_id: uuid.UUID, executor: Executor | None = None) -> str:
    """Claim and solve one plan (in ``executor`` when given); returns the final status (or why it was skipped)."""
    with sessions() as session:
        claimed = store.claim_run(session, plan_id, WORKER)
        if not claimed.ok:
            return f"skipped: {claimed.reason}"
        plan = claimed.value
        try:
            result = solve(session, plan, executor)
        except Abandoned:
            session.rollback()
            return "abandoned: the server is stopping (the plan is re-queued on the next start)"
        except (InputError, PlanningError, ValueError) as e:
            session.rollback()
            store.fail_run(session, plan_id, WORKER, str(e))
            return RunStatus.FAILED.value
        except Exception as e:  # a bug: say so without leaking internals, keep the traceback in the log
            details = f"\n{e.details}" if isinstance(e, WorkerError) else ""  # the worker process's traceback
            log.exception("plan %s failed%s", plan_id, details)
            session.rollback()
            store.fail_run(session, plan_id, WORKER, f"internal error while solving ({type(e).__name__}); "
                           "the server logged the details")
            return RunStatus.FAILED.value
        done = store.finish_run(session, plan_id, WORKER, result)
        return RunStatus.DONE.value if done.ok else f"not stored: {done.reason}"


def requeue_stale(sessions: sessionmaker[Session]) -> int:
    """Running → queued for plans whose process died (``store.requeue_run``, audited as ``plan.requeue``)."""
    n = 0
    with sessions() as session:
        ids = list(session.scalars(select(Plan.id).where(Plan.status == RunStatus.RUNNING.value,
                                                          Plan.approval == Approval.DRAFT.value)))
        session.commit()
        for pid in ids:
            n += store.requeue_run(session, pid, WORKER).ok
    return n


_deferred: contextvars.ContextVar[list[uuid.UUID] | None] = contextvars.ContextVar("commitplan_deferred_jobs",
                                                                                 default=None)


@contextmanager
def deferred_submits() -> Iterator[list[uuid.UUID]]:
    """Inside, :meth:`JobRunner.submit` only collects plan ids (in the yielded list) instead of queuing them:
    for a caller whose plan is not committed yet (a worker could not see it). Queue them after the commit."""
    pending: list[uuid.UUID] = []
    token = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(token)


class JobRunner:
    """``workers`` threads reading plan ids from a queue; ``submit`` never blocks.

    Each thread claims a plan and stores its result; the solve itself runs in a pool of ``workers``
    processes (started on the first solve, ``spawn``ed: no fork of a threaded server), so CPU-bound
    solving never holds the GIL that request handling needs. ``processes=False`` solves in the threads.
    """

    def __init__(self, sessions: sessionmaker[Session], workers: int = 2, processes: bool = True) -> None:
        self.sessions, self.workers, self.processes = sessions, workers, processes
        self.queue: queue.Queue[object] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.busy = 0
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._stopping = False

    def executor(self) -> ProcessPoolExecutor | None:
        """The solve process pool (created on first use; a broken pool is replaced)."""
        if not self.processes:
            return None
        with self._lock:
            if self._executor is None or getattr(self._executor, "_broken", False):
                self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            return self._executor

    def start(self, requeue_running: bool = True) -> None:
        if requeue_running:
            requeue_stale(self.sessions)
        with self.sessions() as session:
            for pid in session.scalars(select(Plan.id).where(Plan.status == RunStatus.QUEUED.value)
                                       .order_by(Plan.created_at)):
                self.queue.put(pid)
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"commitplan-job-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def submit(self, plan_id: uuid.UUID) -> None:
        pending = _deferred.get()
        if pending is not None:
            pending.append(plan_id)
            return
        self.queue.put(plan_id)

    def pending(self) -> int:
        return self.queue.qsize() + self.busy

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP or self._stopping:  # plans still queued stay queued in the database
                return
            with self._lock:
                self.busy += 1
            try:
                log.info("plan %s: %s", item, run_one(self.sessions, item, self.executor()))  # type: ignore[arg-type]
            except Exception:  # the database went away, …: the plan stays queued/running for the next start
                log.exception("job for plan %s crashed", item)
            finally:
                with self._lock:
                    self.busy -= 1

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        for _ in self.threads:
            self.queue.put(_STOP)
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:  # a solve still running is abandoned: its plan stays running, re-queued on start
            executor.commitplan_stopping = True  # type: ignore[attr-defined]
            processes = list((executor._processes or {}).values())  # no public way to stop a busy worker (< 3.14)
            executor.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                p.terminate()
        for t in self.threads:
            t.join(timeout)
        self.threads.clear()
