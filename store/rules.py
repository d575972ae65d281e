"""The approval workflow's rules as a pure function, and the result every store operation returns.

No database here: :func:`check` decides from a snapshot of the plan and the actor, so the rules
can be tested (and shown to a user) on their own. :mod:`store.plans` applies them and then makes
the change with a conditional UPDATE, which is what settles races.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

from store.keys import Actor
from store.models import Approval, RunStatus

T = TypeVar("T")


class Outcome(enum.StrEnum):
    OK = "ok"
    FORBIDDEN = "forbidden"  # the actor may not do this (role, separation of duties)
    CONFLICT = "conflict"  # the object is not in a state that allows it (or another caller won)
    NOT_FOUND = "not_found"
    INVALID = "invalid"  # the request itself is wrong (e.g. a dataset of the wrong kind)


HTTP_STATUS = {Outcome.OK: 200, Outcome.FORBIDDEN: 403, Outcome.CONFLICT: 409, Outcome.NOT_FOUND: 404,
               Outcome.INVALID: 422}


@dataclass(frozen=True)
class Result(Generic[T]):
    """What an operation did: the API maps ``outcome`` to a status code and ``reason`` to the body."""

    outcome: Outcome
    value: T | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.outcome]


@dataclass(frozen=True)
class PlanFacts:
    """The part of a plan the rules look at."""

    status: str
    approval: str
    created_by: str
    submitted_by: str | None = None
    decided_by: str | None = None


DECIDED = (Approval.APPROVED.value, Approval.REJECTED.value)


def check(action: str, plan: PlanFacts | None, actor: Actor) -> tuple[Outcome, str]:
    """May ``actor`` do ``action`` (``submit``, ``approve`` or ``reject``) to ``plan`` now?

    Checked in this order: the plan exists; the role allows it; nobody decides a plan they created
    or submitted; the plan is in the right state (a decision is final, so an approved plan can
    never change again).
    """
    if plan is None:
        return Outcome.NOT_FOUND, "no such plan"
    if action == "submit":
        if not actor.can("submit"):
            return Outcome.FORBIDDEN, f"role {actor.role.value} cannot submit plans"
        if plan.approval != Approval.DRAFT:
            return Outcome.CONFLICT, f"the plan is already {plan.approval}"
        if plan.status != RunStatus.DONE:
            return Outcome.CONFLICT, f"the plan is {plan.status}: only a finished plan can be submitted"
        return Outcome.OK, ""
    if action not in ("approve", "reject"):
        raise ValueError(f"unknown plan action {action!r}")
    if not actor.can("decide"):
        return Outcome.FORBIDDEN, f"role {actor.role.value} cannot {action} plans: finance or admin decides"
    if actor.name == plan.created_by:
        return Outcome.FORBIDDEN, f"{actor.name} created this plan: someone else must {action} it"
    if actor.name == plan.submitted_by:
        return Outcome.FORBIDDEN, f"{actor.name} submitted this plan: someone else must {action} it"
    if plan.approval in DECIDED:
        return Outcome.CONFLICT, f"the plan was already {plan.approval} by {plan.decided_by}: a decision is final"
    if plan.approval != Approval.SUBMITTED:
        return Outcome.CONFLICT, f"the plan is {plan.approval}, not submitted: submit it first"
    return Outcome.OK, ""
