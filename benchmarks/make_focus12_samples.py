#!/usr/bin/env python3
"""Regenerate the FOCUS 1.2 sample files in ``tests/data/focus12/``.

The data come from the PyPI package **focus-data-toolkit==0.14.1** (MIT; generator output
is synthetic, no real bill). Its Parquet copy is written with **pyarrow==25.0.1**. Both
are pinned here (``TOOLKIT_PIN`` / ``PYARROW_PIN``) and live in a venv of their own, never
in the project's venv::

    python benchmarks/make_focus12_samples.py            # (re)write tests/data/focus12/
    python benchmarks/make_focus12_samples.py --check    # regenerate to a temp dir, compare bytes

Any Python >= 3.11 may start it. Unless it already runs where the pinned toolkit is
importable, it creates (or reuses) the venv ``--venv`` (default
``~/.cache/commitplan/focus-data-toolkit-0.14.1``, or ``$COMMITPLAN_FOCUS_TOOLKIT_VENV``),
pip-installs the pins there and re-executes itself with that venv's interpreter.

What it writes, per provider (aws, azure, gcp), ``ROWS`` rows each, seed ``SEED``:

* ``focus12_<provider>.csv`` -- the toolkit's CSV exactly as its generator CLI writes it:
  ``python -m focus_data_toolkit.generators.generate_<provider>_focus_1_2
  --rows ROWS --seed SEED --include-credits --out ...``. ``--include-credits`` adds a few
  ``Credit`` rows with negative costs; commitment discounts (purchases of reservations /
  savings plans / CUDs and the usage they cover, Used and Unused) are always generated
  by the FOCUS 1.2 generator (about three quarters of the rows), there is no switch.
* ``focus12_aws.parquet`` -- the same rows as ``focus12_aws.csv``, typed: the FOCUS
  Decimal columns as ``decimal128(38, 18)``, the four Date/Time columns as
  ``timestamp[us, tz=UTC]``, everything else (JSON included) as ``string``; empty CSV
  fields become nulls.
* ``MANIFEST.json`` -- versions, seed, row counts, SHA-256 of every file and the
  per-provider sums of BilledCost / EffectiveCost / ListCost / ContractedCost (exact,
  ``decimal.Decimal`` over the CSV text). ``README.md`` is written by hand; its numbers
  come from this manifest.

The toolkit is deterministic (fixed billing window May 2026, ``random.Random(seed)``,
no clock): the same pins give byte-identical CSVs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import venv
from decimal import Decimal
from pathlib import Path

TOOLKIT_PIN = "0.14.1"
PYARROW_PIN = "25.0.1"
SEED = 1202  # the toolkit's own default seed for FOCUS 1.2 (VersionAdapter V12.default_seed)
ROWS = 1000
PROVIDERS = ("aws", "azure", "gcp")
PARQUET_PROVIDERS = ("aws",)

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "tests" / "data" / "focus12"
DEFAULT_VENV = Path(
    os.environ.get(
        "COMMITPLAN_FOCUS_TOOLKIT_VENV",
        Path.home() / ".cache" / "commitplan" / f"focus-data-toolkit-{TOOLKIT_PIN}",
    )
)

# FOCUS 1.2 column types (from the FOCUS 1.2 spec / focus-validator's model-1.2.0.1.json).
DECIMAL_COLUMNS = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
    "ListUnitPrice", "ContractedUnitPrice", "PricingQuantity", "ConsumedQuantity",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "CommitmentDiscountQuantity",
)
DATETIME_COLUMNS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
SUM_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
DECIMAL_SCALE = 18  # the toolkit emits at most 17 fractional digits (tax on a 16-digit cost)


def _have_pins() -> bool:
    from importlib import metadata

    try:
        return (metadata.version("focus-data-toolkit") == TOOLKIT_PIN
                and metadata.version("pyarrow") == PYARROW_PIN)
    except metadata.PackageNotFoundError:
        return False


def _venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _ensure_toolkit_venv(path: Path) -> Path:
    """Create/refresh the generator venv with the pinned packages; return its python."""
    py = _venv_python(path)
    probe = (
        "from importlib import metadata as m; import sys;"
        f"sys.exit(0 if m.version('focus-data-toolkit')=='{TOOLKIT_PIN}'"
        f" and m.version('pyarrow')=='{PYARROW_PIN}' else 1)"
    )
    if py.exists() and subprocess.run([py, "-c", probe], check=False, capture_output=True).returncode == 0:
        return py
    print(f"creating the generator venv {path}", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=py.exists()).create(path)
    subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"focus-data-toolkit=={TOOLKIT_PIN}", f"pyarrow=={PYARROW_PIN}"],
        check=True,
    )
    return py


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _generate_csv(provider: str, out: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", f"focus_data_toolkit.generators.generate_{provider}_focus_1_2",
         "--rows", str(ROWS), "--seed", str(SEED), "--include-credits", "--out", str(out)],
        check=True, stdout=subprocess.DEVNULL,
    )


def _write_parquet(csv_path: Path, out: Path) -> None:
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    with csv_path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or ())
        rows = list(reader)
    fields, arrays = [], []
    for name in columns:
        values = [r[name] for r in rows]
        if name in DECIMAL_COLUMNS:
            typ = pa.decimal128(38, DECIMAL_SCALE)
            data = [Decimal(v) if v != "" else None for v in values]
        elif name in DATETIME_COLUMNS:
            typ = pa.timestamp("us", tz="UTC")
            data = [datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                    if v != "" else None for v in values]
        else:
            typ = pa.string()
            data = [v if v != "" else None for v in values]
        fields.append(pa.field(name, typ))
        arrays.append(pa.array(data, type=typ))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    pq.write_table(table, out, compression="zstd")


def _sums(csv_path: Path) -> tuple[int, dict[str, str]]:
    totals = {c: Decimal(0) for c in SUM_COLUMNS}
    n = 0
    with csv_path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            n += 1
            for c in SUM_COLUMNS:
                if row[c] != "":
                    totals[c] += Decimal(row[c])
    return n, {c: format(v, "f") for c, v in totals.items()}


def generate(out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "generator": f"focus-data-toolkit=={TOOLKIT_PIN}",
        "parquet_writer": f"pyarrow=={PYARROW_PIN}",
        "focus_version": "1.2",
        "seed": SEED,
        "rows_requested": ROWS,
        "include_credits": True,
        "files": {},
    }
    for provider in PROVIDERS:
        csv_path = out_dir / f"focus12_{provider}.csv"
        _generate_csv(provider, csv_path)
        rows, sums = _sums(csv_path)
        manifest["files"][csv_path.name] = {
            "provider": provider, "rows": rows, "sha256": _sha256(csv_path), "sums": sums,
        }
        if provider in PARQUET_PROVIDERS:
            pq_path = out_dir / f"focus12_{provider}.parquet"
            _write_parquet(csv_path, pq_path)
            manifest["files"][pq_path.name] = {
                "provider": provider, "rows": rows, "sha256": _sha256(pq_path),
                "same_rows_as": csv_path.name,
            }
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output directory (default {OUT_DIR})")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="generator venv (pinned toolkit)")
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary directory and compare with --out byte for byte")
    args = parser.parse_args(argv)

    if not _have_pins():
        py = _ensure_toolkit_venv(args.venv)
        forwarded = sys.argv[1:] if argv is None else argv
        return subprocess.run([py, str(Path(__file__).resolve()), *forwarded], check=False).returncode

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = generate(Path(tmp))
            bad = [name for name, meta in fresh["files"].items()
                   if not (args.out / name).exists() or _sha256(args.out / name) != meta["sha256"]]
            old = (args.out / "MANIFEST.json").read_text(encoding="utf-8")
            if old != (Path(tmp) / "MANIFEST.json").read_text(encoding="utf-8"):
                bad.append("MANIFEST.json")
        print("identical" if not bad else f"DIFFERENT: {', '.join(bad)}")
        return 1 if bad else 0

    manifest = generate(args.out)
    print(f"wrote {args.out} with {manifest['generator']}, seed {SEED}")
    print("| file | rows | sum BilledCost | sum EffectiveCost | sum ListCost | sum ContractedCost |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, meta in manifest["files"].items():
        if "sums" in meta:
            s = meta["sums"]
            cells = [name, str(meta["rows"]), *(s[c] for c in SUM_COLUMNS)]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
