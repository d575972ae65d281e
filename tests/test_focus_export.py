"""The ledger exported as FOCUS 1.2 passes the FinOps Foundation's focus-validator for the columns
we fill, whatever export the ledger was loaded from.

Not counted against us: the validator's own false positives (``KNOWN_FALSE_POSITIVES``), SHOULD
rules (ids ending in -O) and rules that fail only because a column we do not fill is absent
(ServiceSubcategory). A FOCUS source keeps its own values, so the FOCUS 1.0 sample's two
violations of its own data pass through unchanged, and nothing else does."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.focus_export import export_focus
from billing.focus_validator import (
    KNOWN_FALSE_POSITIVES,
    find_python312,
    validate_focus_file,
)
from billing.ingest import ingest
from tests.test_ingest import (
    AZURE_ACTUAL,
    AZURE_AMORTIZED,
    CUR_LEGACY,
    FOCUS_SAMPLE,
    GCP_SAMPLE,
)

FOCUS12 = Path(__file__).parent / "data" / "focus12"
SOURCES = {
    "focus-1.0-sample": FOCUS_SAMPLE,
    "toolkit-aws": FOCUS12 / "focus12_aws.csv",
    "toolkit-azure": FOCUS12 / "focus12_azure.csv",
    "toolkit-gcp": FOCUS12 / "focus12_gcp.csv",
    "aws-cur": CUR_LEGACY,
    "azure-ea-amortized": AZURE_AMORTIZED,
    "azure-ea-actual": AZURE_ACTUAL,
    "gcp-export": GCP_SAMPLE,
}
SOURCE_DATA_VIOLATIONS = {
    "focus-1.0-sample": {
        # its rows name the provider 'AWS' and the issuer 'Amazon Web Services, Inc.', which the rule
        # reads as a third-party (marketplace) charge whose BilledCost must be 0
        "BilledCost-C-005-C",
        # it files 'Amazon Elastic Compute Cloud' under both Compute and Storage
        "ServiceName-C-005-C",
    },
}


@pytest.fixture(scope="module")
def validator():
    from billing.focus_validator import ensure_validator_venv

    if find_python312() is None:
        pytest.skip("focus-validator 2.x needs a Python 3.12 interpreter (COMMITPLAN_PYTHON312)")
    return ensure_validator_venv()


def not_ours(result, columns) -> set[str]:
    """Rule ids that do not judge the columns we fill: SHOULD rules, rules needing an absent column."""
    unfilled = {"ServiceSubcategory"}
    return {
        f.check_id for f in result.all_failures
        if f.check_id.endswith("-O") or f.column not in columns
        or any(f"{column}-" in f.message for column in unfilled)
    }


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_export_passes_focus_validator_for_the_columns_we_fill(tmp_path, validator, name):
    ledger = tmp_path / "l.duckdb"
    ingest([SOURCES[name]], ledger)
    out = tmp_path / "export.parquet"
    exported = export_focus(ledger, out, "parquet")
    result = validate_focus_file(out, venv_path=validator)
    ignore = set(KNOWN_FALSE_POSITIVES) | not_ours(result, exported.columns) | SOURCE_DATA_VIOLATIONS.get(name, set())
    verdict = result.filtered(columns=exported.columns, ignore=ignore)
    assert verdict.passed, [f"{f.check_id} ({f.column}): {f.message[:160]}" for f in verdict.failures]
    assert sum(s == "PASS" for s in result.statuses.values()) >= 40
    for check in SOURCE_DATA_VIOLATIONS.get(name, ()):  # the source's own violations do show
        assert result.statuses[check] == "FAIL"
