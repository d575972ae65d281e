"""Price catalog importers: provider price files -> the price book CSV contract (DESIGN.md §4).

``import_catalog(path)`` tells the file's kind from its content and returns a frame with the
contract's columns (``offering,kind,term_months,payment,pool,hourly_rate,upfront,increment``) plus
``source``; ``frame.attrs`` holds the file's label and notes. ``import_catalogs(paths)`` merges
several (a Savings Plans rate file needs the on-demand prices of an offer file), and
``write_price_book(frame, path)`` writes a book ``models.readers.read_price_book`` loads.

Kinds: ``aws-offer`` (AWS Price List EC2 offer file, CSV), ``aws-savings-plans`` (Savings Plans
rate file, CSV), ``gcp-pricing-yml`` (pricing.yml of google-cloud-pricing-cost-calculator) and
``azure-export`` (Azure EA/MCA cost details export). Pool and unit rules: see each module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from billing.catalogs.aws_offer import import_aws_offer
from billing.catalogs.aws_savings_plans import import_aws_savings_plans, rate_file_urls
from billing.catalogs.azure import flexibility_groups, import_azure_export
from billing.catalogs.book import (
    COLUMNS,
    drop_incomplete,
    merge,
    read_source_label,
    write_price_book,
)
from billing.catalogs.gcp import import_gcp_pricing
from models.csv_cells import existing_file
from models.errors import InputError

IMPORTERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "aws-offer": import_aws_offer,
    "aws-savings-plans": import_aws_savings_plans,
    "gcp-pricing-yml": import_gcp_pricing,
    "azure-export": import_azure_export,
}
KINDS = tuple(IMPORTERS)
SNIFF_BYTES = 65536

__all__ = [
    "COLUMNS", "KINDS", "detect_kind", "drop_incomplete", "flexibility_groups", "import_catalog", "import_catalogs",
    "merge", "rate_file_urls", "read_source_label", "write_price_book",
]


def _head(path: Path) -> str:
    with open(path, "rb") as handle:
        raw = handle.read(SNIFF_BYTES)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 4:  # a multi-byte character cut at the end is fine
            raise InputError(str(path), "the file is not UTF-8 text") from None
        return raw[: exc.start].decode("utf-8-sig")


def detect_kind(path: str | Path) -> str:
    """The catalog kind of ``path``, told from its first lines."""
    file = existing_file(path)
    head = _head(file)
    stripped = head.lstrip()
    if stripped.startswith("{"):
        if '"versionUrl"' in head and '"regions"' in head:
            raise InputError(str(path), "this is the Savings Plans region index: it lists one rate file per region "
                             "(versionUrl); download a region's rate file as CSV (index.csv) and import that")
        raise InputError(str(path), "a JSON file that is not a known price catalog; offer and rate files are "
                         "read as CSV (index.csv)")
    lines = head.splitlines()
    rows = list(csv.reader(io.StringIO("\n".join(lines[:20]))))
    for row in rows:
        cells = {c.strip() for c in row}
        if "SKU" in cells and "DiscountedRate" in cells:
            return "aws-savings-plans"
        if "SKU" in cells and {"TermType", "PricePerUnit"} <= cells:
            return "aws-offer"
    first = {c.strip().lower() for c in rows[0]} if rows else set()
    if "metercategory" in first or "instanceflexibilitygroup" in first:
        return "azure-export"
    if any(line.rstrip() == "compute:" for line in lines) or file.suffix.lower() in (".yml", ".yaml"):
        return "gcp-pricing-yml"
    raise InputError(str(path), f"cannot tell which price catalog this is; pass kind, one of {', '.join(KINDS)}", row=1)


def import_catalog(path: Path | str, kind: str | None = None) -> pd.DataFrame:
    """Import one provider price file as price book rows (contract columns + ``source``)."""
    chosen = kind or detect_kind(path)
    if chosen not in IMPORTERS:
        raise InputError(str(path), f"unknown catalog kind '{chosen}'; choose one of {', '.join(KINDS)}")
    return IMPORTERS[chosen](Path(path))


def import_catalogs(paths: Iterable[Path | str], kind: str | None = None) -> pd.DataFrame:
    """Import several files and merge them (the first file's figures win where two give the same row)."""
    return merge(import_catalog(p, kind) for p in paths)
