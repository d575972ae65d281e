"""Background solves: a bounded pool of worker threads that claim queued plans and store their results.

A job is only a plan id on an in-process queue; the plan row is the truth. A worker claims the
plan (``store.claim_run``: queued → running, exactly one claimant wins), loads its datasets, solves
(``plan_for_usage``, or ``plan_for_history`` when the plan has a horizon), and stores the plan JSON
(``store.finish_run``) or the error (``store.fail_run``). Each worker has its own session, so a
solve never holds a connection or lock that reads would wait on. On startup, plans left queued
(and, unless disabled, running: their process died) are queued again.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import store
from models.errors import InputError, PlanningError
from models.policy import Policy
from models.readers import read_existing, read_price_book, read_usage
from store import Actor, Plan, Role, RunStatus
from store.models import Approval

log = logging.getLogger("commitplan.jobs")

WORKER = Actor("commitplan-worker", Role.ADMIN)
_STOP = object()


def _write(directory: Path, stem: str, content: bytes) -> Path:
    path = directory / (f"{stem}.csv.gz" if content[:2] == b"\x1f\x8b" else f"{stem}.csv")
    path.write_bytes(content)
    return path


def solve(session: Session, plan: Plan) -> dict:
    """The plan JSON for a stored plan's inputs (raises InputError / PlanningError / ValueError)."""
    with tempfile.TemporaryDirectory(prefix="commitplan-job-") as tmp:
        d = Path(tmp)
        usage_path = _write(d, "usage", store.dataset_content(session, plan.usage_dataset_id) or b"")
        prices_path = _write(d, "prices", store.dataset_content(session, plan.prices_dataset_id) or b"")
        names = {str(usage_path): f"usage dataset {plan.usage_dataset_id}",
                 str(prices_path): f"prices dataset {plan.prices_dataset_id}"}
        held = []
        try:
            book = read_price_book(prices_path)
            matrix = read_usage(usage_path, known_pools=set(book.on_demand))
            if plan.commitments_dataset_id is not None:
                path = _write(d, "commitments", store.dataset_content(session, plan.commitments_dataset_id) or b"")
                names[str(path)] = f"commitments dataset {plan.commitments_dataset_id}"
                held = read_existing(path, book)
        except InputError as e:
            raise InputError(names.get(e.file, e.file), e.message, e.row, e.column) from None
        session.commit()  # release the read transaction before the (long) solve
        policy = Policy(**plan.policy) if plan.policy else None
        if plan.horizon_months:
            from solver.future_plan import plan_for_history
            result = plan_for_history(matrix, book, plan.horizon_months, held, policy=policy)
        else:
            from solver.planner import plan_for_usage
            result = plan_for_usage(matrix, book, held, policy=policy)
    return result.model_dump(mode="json")


def run_one(sessions: sessionmaker[Session], plan_id: uuid.UUID) -> str:
    """Claim and solve one plan; returns the final status (or why it was skipped)."""
    with sessions() as session:
        claimed = store.claim_run(session, plan_id, WORKER)
        if not claimed.ok:
            return f"skipped: {claimed.reason}"
        plan = claimed.value
        try:
            result = solve(session, plan)
        except (InputError, PlanningError, ValueError) as e:
            session.rollback()
            store.fail_run(session, plan_id, WORKER, str(e))
            return RunStatus.FAILED.value
        except Exception as e:  # a bug: say so without leaking internals, keep the traceback in the log
            log.exception("plan %s failed", plan_id)
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
    """``workers`` threads reading plan ids from a queue; ``submit`` never blocks."""

    def __init__(self, sessions: sessionmaker[Session], workers: int = 2) -> None:
        self.sessions, self.workers = sessions, workers
        self.queue: queue.Queue[object] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.busy = 0
        self._lock = threading.Lock()

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
            if item is _STOP:
                return
            with self._lock:
                self.busy += 1
            try:
                log.info("plan %s: %s", item, run_one(self.sessions, item))  # type: ignore[arg-type]
            except Exception:  # the database went away, …: the plan stays queued/running for the next start
                log.exception("job for plan %s crashed", item)
            finally:
                with self._lock:
                    self.busy -= 1

    def stop(self, timeout: float = 5.0) -> None:
        for _ in self.threads:
            self.queue.put(_STOP)
        for t in self.threads:
            t.join(timeout)
        self.threads.clear()
