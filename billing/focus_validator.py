"""Run the FinOps Foundation's FOCUS validator (PyPI ``focus-validator``) on a billing file.

The validator cannot live in the project's environment: 2.x pins ``numpy<2`` and
``pandas<3`` (installing it downgrades both and breaks OR-Tools) and needs Python >= 3.12.
So it gets a venv of its own, built by :func:`ensure_validator_venv`, and
:func:`validate_focus_file` runs it there as a subprocess and parses its console report.

Facts about focus-validator 2.2.1 this module relies on (found by running it):

* CLI: ``python -m focus_validator.main --data-file FILE --validate-version 1.2
  --block-download [--applicability-criteria A,B|ALL]``. ``--block-download`` keeps it from
  fetching the rule model from GitHub; 2.2.1 ships ``rules/model-1.2.0.1.json`` (FOCUS 1.2
  only). CSV or Parquet is picked by the file suffix.
* It opens ``focus_validator/rules/currency_codes.csv`` relative to the working directory,
  so it runs with cwd = the venv's site-packages (the directory holding the package).
  Its default logging config writes ``focus_validator_detailed.log`` into the cwd; we point
  ``LOGGING_CONFIG`` at a config that sends warnings to stderr instead.
* Exit status is 0 whether or not checks fail (non-zero only when it crashes). The verdict
  is in stdout: a summary ``Total: N | Pass: P | Fail: F | Skipped: S`` and one line per
  rule, ``<icon> <RuleId>: PASS|FAIL|SKIPPED  (violations=N, reason=..., msg=..., 1.2ms)``,
  then a ``--- Failures ---`` section. Rule ids are ``<Column>-C-nnn-X`` (column rules),
  ``CostAndUsage-D-nnn-X`` (dataset rules: column presence and roll-ups) and
  ``<Attribute>-A-nnn-X`` (NumericFormat, DateTimeFormat, ...); X is M(ust)/C(onditional)/O.
  Each rule's ``Reference`` in the model JSON names its column (a presence rule references
  the column it requires), which is how a failure gets its ``column`` here.
* Without ``--applicability-criteria`` every rule gated on a provider capability
  (COMMITMENT_DISCOUNT_SUPPORTED, AVAILABILITY_ZONE_SUPPORTED, CAPACITY_RESERVATION_SUPPORTED,
  ...; ``--show-applicability-criteria`` lists the 18) is skipped as "not applicable",
  including the presence rules of conditional columns: a file that omits the commitment or
  capacity-reservation columns passes. Mandatory columns are always required: a missing
  one fails ``CostAndUsage-D-nnn-M`` ("Column 'X' MUST be present") plus every ``X-C-*``
  rule "[Upstream dependency failed ... (missing column)]". There is no flag to restrict
  checks to the columns a file has; ``--filter-rules P`` keeps only rules whose id starts
  with the one prefix ``P`` (and their dependencies).
* Known weaknesses of 2.2.1 (see ``KNOWN_FALSE_POSITIVES`` and tests/data/focus12/README.md):
  CSV columns are typed by inference, so numeric-looking account ids (AWS) fail the String
  type rules (Parquet with string columns passes); several 1.2 model rules have a lost or
  inverted condition; allowed-value rules (``OR`` of values) pass as soon as *one* row has
  an allowed value, so a single bad ``ChargeCategory`` goes unnoticed.

The ``columns`` filter of :func:`validate_focus_file` keeps only failures whose rule
references one of the given columns (column rules and the presence rule of that column).
Dataset roll-ups (``CostAndUsage-D-000/001/002``, whose failing children are reported on
their own) and attribute rules are dropped by the filter; ``all_failures`` keeps everything.
``ignore`` drops given check ids (typically ``KNOWN_FALSE_POSITIVES``) and the composites
that fail only because of them. "Passes for the columns we fill" is therefore::

    validate_focus_file(path, columns=OUR_COLUMNS, ignore=KNOWN_FALSE_POSITIVES).passed
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from billing.focus_validator_venv import (
    _LOGGING_CONFIG,
    FOCUS_VALIDATOR_VERSION,
    PINNED_REQUIREMENTS,
    FocusValidatorError,
    _read_marker,
    _venv_python,
    default_venv_path,
    ensure_validator_venv,
    find_python312,
)

__all__ = [
    "FOCUS_VALIDATOR_VERSION",
    "KNOWN_FALSE_POSITIVES",
    "PINNED_REQUIREMENTS",
    "Failure",
    "FocusValidatorError",
    "ValidationResult",
    "default_venv_path",
    "ensure_validator_venv",
    "find_python312",
    "validate_focus_file",
]


# Failures focus-validator 2.2.1 reports on conformant FOCUS 1.2 data (tests/data/focus12):
# rule id -> why it is the validator's fault, not the data's.
KNOWN_FALSE_POSITIVES: dict[str, str] = {
    "InvoiceId-C-004-C": (
        "model rule lost its condition ('null when the charge is not associated with an "
        "invoice'): fails every row that has an InvoiceId"
    ),
    "EffectiveCost-C-005-C": (
        "checks EffectiveCost == 0 on every Purchase row, ignoring 'intended to cover future "
        "eligible charges': fails one-off/subscription purchases consumed in their period"
    ),
    "CommitmentDiscountStatus-C-004-C": (
        "model condition inverted (CommitmentDiscountId IS NULL instead of IS NOT NULL and "
        "ChargeCategory = 'Usage'): fails every row without a commitment discount; only "
        "checked when COMMITMENT_DISCOUNT_SUPPORTED (or ALL) is declared"
    ),
    "CapacityReservationStatus-C-004-C": (
        "model condition malformed ({'AND': [...]} instead of a CheckFunction) and ignored: "
        "fails every row with a null CapacityReservationStatus; only checked when "
        "CAPACITY_RESERVATION_SUPPORTED (or ALL) is declared"
    ),
    "BillingAccountId-C-002-M": (
        "CSV only: column types are inferred, so all-digit ids (AWS accounts) load as "
        "integers and fail 'MUST be of type String'"
    ),
    "SubAccountId-C-001-M": (
        "CSV only, as BillingAccountId-C-002-M; only checked when SUB_ACCOUNT_SUPPORTED "
        "(or ALL) is declared"
    ),
}


_RULE_LINE = re.compile(
    r"^(?:\S+|\[(?:PASS|SKIP|FAIL)\]) (?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[A-Z]): "
    r"(?P<status>PASS|FAIL|SKIPPED)(?:  \((?P<extra>.*)\))?$"
)
_SUMMARY = re.compile(r"^Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)$")



class Failure(NamedTuple):
    check_id: str  # e.g. "BilledCost-C-001-M"
    column: str  # the rule's Reference: a FOCUS column, an attribute, or "CostAndUsage"
    message: str  # the validator's message for this run (MustSatisfy text if it gave none)


@dataclass
class ValidationResult:
    passed: bool  # no failures left after the ``columns`` filter
    failures: list[Failure]  # after the ``columns`` filter
    raw_output: str  # the validator's stdout, then its stderr
    all_failures: list[Failure] = field(default_factory=list)  # before the filter
    statuses: dict[str, str] = field(default_factory=dict)  # rule id -> PASS / FAIL / SKIPPED
    violations: dict[str, int] = field(default_factory=dict)  # failing rule id -> rows (or 1)
    command: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failing_checks(self) -> set[str]:
        return {f.check_id for f in self.failures}

    def failures_for(self, column: str) -> list[Failure]:
        return [f for f in self.failures if f.column == column]

    def filtered(self, columns: Iterable[str] | None = None, ignore: Iterable[str] = ()) -> ValidationResult:
        """The same run, with ``failures``/``passed`` recomputed from ``all_failures``.

        ``columns``: keep failures whose rule references one of these columns (``None``: all).
        ``ignore``: drop these check ids (e.g. ``KNOWN_FALSE_POSITIVES``), and with them every
        composite rule ("AND failed - failed child rules: [...]") all of whose failed
        children are dropped.
        """
        ignored = set(ignore)
        changed = True
        while changed:  # composites of composites
            changed = False
            for f in self.all_failures:
                children = _failed_children(f.message)
                if f.check_id not in ignored and children and children <= ignored:
                    ignored.add(f.check_id)
                    changed = True
        wanted = None if columns is None else set(columns)
        kept = [f for f in self.all_failures
                if f.check_id not in ignored and (wanted is None or f.column in wanted)]
        return replace(self, passed=not kept, failures=kept)


# --------------------------------------------------------------------------- validation


def _rule_references(site_packages: Path, version: str) -> dict[str, dict]:
    models = sorted((site_packages / "focus_validator" / "rules").glob(f"model-{version}*.json"))
    if not models:
        return {}
    return json.loads(models[-1].read_text(encoding="utf-8")).get("ModelRules", {})


_CHILDREN = re.compile(r"(?:AND|OR) failed - failed child rules: \[([^\]]*)\]")


def _failed_children(message: str) -> set[str]:
    m = _CHILDREN.search(message)
    return {c.strip() for c in m.group(1).split(",") if c.strip()} if m else set()


def _parse_extra(extra: str) -> tuple[int | None, str]:
    violations = None
    m = re.match(r"violations=(\d+)", extra)
    if m:
        violations = int(m.group(1))
    msg = ""
    m = re.search(r"(?:^|, )msg=(.*?)(?:, [\d.]+ms)?$", extra)
    if m:
        msg = m.group(1)
    else:
        m = re.search(r"(?:^|, )reason=(.*?)(?:, [\d.]+ms)?$", extra)
        if m:
            msg = m.group(1)
    return violations, msg


def validate_focus_file(
    path: Path,
    version: str = "1.2",
    columns: Iterable[str] | None = None,
    *,
    ignore: Iterable[str] = (),
    applicability_criteria: Sequence[str] | str | None = None,
    venv_path: Path | None = None,
    timeout: float = 600,
) -> ValidationResult:
    """Validate a FOCUS Cost and Usage file (``.csv`` or ``.parquet``) with focus-validator.

    ``columns``: keep only failures of rules that reference one of these FOCUS columns
    (``None`` keeps every failure). Use it for "passes for the columns we fill": e.g.
    ``columns=["BilledCost", "EffectiveCost", "ChargeCategory", ...]`` ignores failures about
    columns the caller does not produce or use, but still reports a listed column that is
    missing (its presence rule references it). ``ignore``: check ids to drop, such as
    ``KNOWN_FALSE_POSITIVES`` (composites failing only through them are dropped too); see
    :meth:`ValidationResult.filtered`, which re-filters a result without re-running.
    ``applicability_criteria``: capability
    names (or ``"ALL"``) that turn on the conditional rules gated on them; ``None`` = the
    validator's default (they are skipped). Raises :class:`FocusValidatorError` if the
    validator crashes or its report cannot be parsed; failed checks are not an exception.
    """
    data = Path(path).absolute()
    if not data.is_file():
        raise FileNotFoundError(data)
    if data.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"focus-validator picks its reader by suffix; {data.name} is neither .csv nor .parquet")
    venv_dir = ensure_validator_venv(venv_path)
    marker = _read_marker(venv_dir)
    assert marker is not None
    site_packages = Path(marker["site_packages"])

    command = [str(_venv_python(venv_dir)), "-m", "focus_validator.main",
               "--data-file", str(data), "--validate-version", version, "--block-download"]
    if applicability_criteria:
        criteria = (applicability_criteria if isinstance(applicability_criteria, str)
                    else ",".join(applicability_criteria))
        command += ["--applicability-criteria", criteria]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONIOENCODING="utf-8", LOGGING_CONFIG=str(venv_dir / _LOGGING_CONFIG))
    started = time.perf_counter()
    proc = subprocess.run(command, check=False, cwd=site_packages, env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=timeout)
    seconds = time.perf_counter() - started
    raw = proc.stdout + ("\n" + proc.stderr if proc.stderr else "")
    if proc.returncode != 0:
        raise FocusValidatorError(f"focus-validator exited {proc.returncode} on {data}:\n{raw[-4000:]}")

    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    violations: dict[str, int] = {}
    summary = None
    for line in proc.stdout.splitlines():
        if summary is None and (m := _SUMMARY.match(line)):
            summary = tuple(int(g) for g in m.groups())
            continue
        m = _RULE_LINE.match(line)
        if m:
            rule, status = m.group("rule"), m.group("status")
            statuses[rule] = status
            if status == "FAIL":
                count, msg = _parse_extra(m.group("extra") or "")
                messages[rule] = msg
                if count is not None:
                    violations[rule] = count
    if summary is None:
        raise FocusValidatorError(f"no 'Total: ...' summary in focus-validator output:\n{raw[-4000:]}")
    counted = (len(statuses), sum(s == "PASS" for s in statuses.values()),
               sum(s == "FAIL" for s in statuses.values()), sum(s == "SKIPPED" for s in statuses.values()))
    if counted != summary:
        raise FocusValidatorError(f"parsed {counted} rule lines but the summary says {summary}:\n{raw[-4000:]}")

    rules = _rule_references(site_packages, version)
    all_failures = []
    for rule in sorted(r for r, s in statuses.items() if s == "FAIL"):
        meta = rules.get(rule, {})
        column = meta.get("Reference") or rule.split("-", 1)[0]
        message = messages.get(rule) or meta.get("ValidationCriteria", {}).get("MustSatisfy", "")
        all_failures.append(Failure(rule, column, message))
    result = ValidationResult(
        passed=not all_failures, failures=list(all_failures), raw_output=raw,
        all_failures=all_failures, statuses=statuses, violations=violations,
        command=command, seconds=seconds,
    )
    return result.filtered(columns, ignore)


if __name__ == "__main__":  # python -m billing.focus_validator FILE [COLUMN ...]
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m billing.focus_validator FILE [COLUMN ...]")
    result = validate_focus_file(Path(sys.argv[1]), columns=sys.argv[2:] or None)
    for failure in result.failures:
        print(f"{failure.check_id}\t{failure.column}\t{failure.message}")
    print("PASSED" if result.passed else f"FAILED ({len(result.failures)} checks)")
    raise SystemExit(0 if result.passed else 1)
