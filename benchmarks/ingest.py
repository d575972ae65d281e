"""Speed and memory of loading a FOCUS export into the ledger and turning it into pool-hours.

    python -m benchmarks.ingest [--rows 10000000 ...] [--format csv parquet] [--seed 12]
                                [--cache DIR] [--out benchmarks/ingest_results.md]
                                [--src DIR] [--set duckdb_setting=value ...] [--timeout 900]

The issue's benchmark: N generated FOCUS 1.2 rows (``benchmarks.focus_generator``) ingested with
``billing.ingest.ingest`` into a fresh ledger and aggregated with
``billing.pool_hours.pool_hours_duckdb``; rows/s = N / (ingest + pool-hours seconds); target
≥ 1 M rows/s on 2 cores.

Generated files are cached in ``--cache`` (default ``$COMMITPLAN_BENCH_CACHE`` or
``/tmp/commitplan-ingest-bench``; not in the repo: 10 M CSV rows are ~8.5 GB) next to a sidecar
``.json`` with the generator's exact sums, and reused while rows, seed and generator version match.

Each measurement runs in a fresh interpreter (imports done before the clock starts) so that the
peak memory — the child's ``ru_maxrss``, DuckDB included, cross-checked by the parent sampling the
child's RSS with psutil — belongs to that one case. The child wraps the ledger connection so that
every SQL statement's seconds add up under a label (sha256 of the file, the checking passes, the
insert, …): the split in the second table. After the clock stops it checks the result:

- rows loaded = rows generated, none rejected;
- loaded and source BilledCost / EffectiveCost / ListCost = the generator's exact sums (Decimal);
- pool-hours: as many (pool, hour) rows and pools as the generator made, and their quantity
  sums to the generator's total normalized usage exactly (Decimal).

``--src DIR`` runs the child against another copy of the code (DIR first on ``sys.path``; for a
prototype of a change under /tmp), ``--set name=value`` runs ``SET name = value`` on every ledger
connection right after it opens (DuckDB threads, memory_limit, preserve_insertion_order, …).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.child import watch

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(os.environ.get("COMMITPLAN_BENCH_CACHE", "/tmp/commitplan-ingest-bench"))
TARGET = 1_000_000  # rows/s
MB = 2**20


@dataclass
class Job:
    """One measurement, run in its own subprocess."""

    file: str
    expected: dict[str, Any]
    ledger: str
    result_file: str
    src: str | None = None
    settings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- child side


def _label(sql: str) -> str:
    """Which pass of the ingest (or the pool-hours) a statement is."""
    s = " ".join(sql.split())
    rules = (
        (r"^DESCRIBE", "describe file (columns)"),
        (r"^CREATE OR REPLACE TEMP VIEW raw_rows", "create raw view"),
        (r"min\(__row\) FILTER", "check: numbers"),
        (r"GROUP BY 1 ORDER BY 2 LIMIT 2", "check: one currency"),
        (r"^SELECT count\(\*\), CAST\(sum", "check: source sums + periods"),
        (r"^INSERT INTO ingest_spans", "map rows: spans and sums"),
        (r"^INSERT INTO pool_hour_totals|^CREATE OR REPLACE TEMP TABLE new_pool_rows|^DROP TABLE new_pool_rows|MIN\(date_trunc\('hour', charge_period_start\)\)", "map rows: pool-hours"),
        (r"FROM ingest_spans new JOIN ingest_spans old", "overlap check"),
        (r"FROM ingest_spans WHERE ingest_id = \? GROUP BY ALL", "loaded sums"),
        (r"^CREATE OR REPLACE TEMP VIEW (charges|pool_rows)", "define charge views"),
        (r"FROM raw_rows WHERE NOT", "rejected rows/sums"),
        (r"^(BEGIN|COMMIT|ROLLBACK)", "begin/commit"),
        (r"FROM pool_hour_totals GROUP BY", "pool-hours: add up the loads' totals"),
        (r"^CREATE OR REPLACE TEMP TABLE new_groups", "map rows: pool-hours"),
        (r"^SELECT count\(\*\), count\(DISTINCT hash", "map rows: distinct keys"),
        (r"^(CREATE|SET|INSERT INTO ingests|SELECT nextval|SELECT ingest_id, format)", "ledger setup/bookkeeping"),
    )
    return next((label for pattern, label in rules if re.search(pattern, s)), "other SQL")


def _add(spent: dict[str, float], label: str, seconds: float, cpu: float) -> None:
    """Wall seconds under ``label``, CPU seconds (all threads of the process) under ``cpu:label``."""
    spent[label] = spent.get(label, 0.0) + seconds
    spent["cpu:" + label] = spent.get("cpu:" + label, 0.0) + cpu


class _Result:
    """What ``execute`` returned, with its fetches timed under the statement's label."""

    def __init__(self, inner: Any, label: str, spent: dict[str, float]):
        self._inner, self._label, self._spent = inner, label, spent

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not name.startswith(("fetch", "to_", "df", "arrow")) or not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                _add(self._spent, self._label, time.perf_counter() - t, time.process_time() - c)

        return timed


class _Connection:
    """A DuckDB connection whose statements are timed by label; ``settings`` run on open."""

    def __init__(self, inner: Any, spent: dict[str, float]):
        self._inner, self._spent = inner, spent

    def _timed(self, method: str, sql: str, *args: Any, **kwargs: Any) -> Any:
        label = _label(sql)
        t, c = time.perf_counter(), time.process_time()
        try:
            out = getattr(self._inner, method)(sql, *args, **kwargs)
        finally:
            _add(self._spent, label, time.perf_counter() - t, time.process_time() - c)
        return _Result(out, label, self._spent)

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._timed("execute", sql, *args, **kwargs)

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._timed("sql", sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def run_job(job: Job) -> dict[str, Any]:
    if job.src:
        sys.path.insert(0, job.src)
    import psutil

    import billing.ingest as ingest_module
    import billing.pool_hours as pool_hours_module
    from billing.ledger import open_ledger, sources_dir

    spent: dict[str, float] = {}

    def timed_open(path: Any, read_only: bool = False, views: bool = True) -> Any:
        t, c = time.perf_counter(), time.process_time()
        connection = open_ledger(path, read_only=read_only, views=views)
        for setting in job.settings:
            name, value = setting.split("=", 1)
            connection.execute(f"SET {name} = {value}")
        _add(spent, "ledger setup/bookkeeping", time.perf_counter() - t, time.process_time() - c)
        return _Connection(connection, spent)

    original_sha = ingest_module.sha256_of

    def timed_sha(path: Path) -> str:
        t, c = time.perf_counter(), time.process_time()
        try:
            return original_sha(path)
        finally:
            _add(spent, "sha256 of file (Python)", time.perf_counter() - t, time.process_time() - c)

    original_copy = ingest_module.keep_copy

    def timed_copy(connection: Any, path: Path, stored: Path) -> None:
        t, c = time.perf_counter(), time.process_time()
        try:
            inner = connection._inner if isinstance(connection, _Connection) else connection  # timed here, once
            return original_copy(inner, path, stored)
        finally:
            _add(spent, "copy source (file copy or CSV to Parquet)", time.perf_counter() - t, time.process_time() - c)

    ingest_module.open_ledger = timed_open
    pool_hours_module.open_ledger = timed_open
    ingest_module.sha256_of = timed_sha
    ingest_module.keep_copy = timed_copy
    rss_start = psutil.Process().memory_info().rss / MB

    load_before = os.getloadavg()[0]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    reports = ingest_module.ingest([job.file], job.ledger)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    ingest_split = dict(spent)
    spent.clear()
    frame = pool_hours_module.pool_hours_duckdb(job.ledger)
    t2 = time.perf_counter()
    cpu = time.process_time() - cpu0
    def pooled(label: str) -> str:
        cpu, base = ("cpu:", label[4:]) if label.startswith("cpu:") else ("", label)
        return cpu + (base if base.startswith("pool-hours") else f"pool-hours: {base}")

    pool_split = {pooled(k): v for k, v in spent.items()}
    peak = _peak_rss_mb()

    def rest(split: dict[str, float], label: str, seconds: float, cpu: float) -> None:
        split[label] = seconds - sum(v for k, v in split.items() if not k.startswith("cpu:"))
        split["cpu:" + label] = cpu - sum(v for k, v in split.items() if k.startswith("cpu:"))

    rest(ingest_split, "Python and the rest", t1 - t0, cpu1 - cpu0)
    rest(pool_split, "pool-hours: Python and the rest", t2 - t1, cpu0 + cpu - cpu1)
    out: dict[str, Any] = {
        "rows": job.expected["rows"], "ingest_seconds": t1 - t0, "pool_hours_seconds": t2 - t1,
        "total_seconds": t2 - t0, "cpu_seconds": cpu, "load_before": load_before, "load_after": os.getloadavg()[0],
        "peak_mb": peak, "rss_start_mb": rss_start,
        "ledger_mb": (Path(job.ledger).stat().st_size
                      + sum(f.stat().st_size for f in sources_dir(job.ledger).iterdir())) / MB,
        "split_ingest": ingest_split, "split_pool_hours": pool_split,
        "duckdb": metadata.version("duckdb"),
    }
    out["checks"] = check(job, reports[0], frame, pool_hours_module, open_ledger)
    return out


def check(job: Job, report: Any, frame: Any, pool_hours_module: Any, open_ledger: Any) -> dict[str, Any]:
    """Everything the load must match, after the clock stopped; ``ok`` is all of them."""
    e = job.expected
    failures = []
    if report.rows_loaded != e["rows"] or report.rows_read != e["rows"] or report.rejected:
        failures.append(f"rows read {report.rows_read}, loaded {report.rows_loaded}, rejected {len(report.rejected)}; "
                        f"generated {e['rows']}")
    for measure in ("BilledCost", "EffectiveCost", "ListCost"):
        want = Decimal(e["sums"][measure])
        for where, got in (("loaded", report.loaded.get(measure)), ("source", report.source.get(measure))):
            if got != want:
                failures.append(f"{where} {measure} {got} != generated {want}")
    pools, pool_hours = frame["pool"].nunique(), len(frame)
    if pools != e["pools"] or pool_hours != e["pool_hours"]:
        failures.append(f"{pools} pools / {pool_hours} pool-hours != generated {e['pools']} / {e['pool_hours']}")
    total = sum((Decimal(q) for q in frame["quantity"]), Decimal(0))  # Decimal objects since 4b70c59
    want = Decimal(e["pool_quantity"])
    if total != want:
        failures.append(f"pool-hours quantity {total} != generated normalized usage {want}")
    return {"ok": not failures, "failures": failures, "pools": int(pools), "pool_hours": int(pool_hours),
            "pool_quantity": str(total), "loaded": {k: str(v) for k, v in report.loaded.items()}}


# --------------------------------------------------------------------------- parent side


def cached_file(rows: int, fmt: str, seed: int, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The generated export (written now unless the cache has it) and the generator's totals."""
    from benchmarks.focus_generator import (
        GENERATOR_VERSION,
        generate_file,
        sidecar,
        source_digest,
    )

    path = cache / f"focus12-{rows}-s{seed}.{fmt}"
    meta = sidecar(path)
    if path.exists() and meta.exists():
        expected = json.loads(meta.read_text())
        if (expected.get("generator_version") == GENERATOR_VERSION and expected.get("rows") == rows
                and expected.get("generator_source") == source_digest()
                and expected.get("seed") == seed and expected.get("bytes") == path.stat().st_size):
            return path, expected
    print(f"[{datetime.now():%H:%M:%S}] generating {rows:,} rows as {fmt} -> {path} ...", file=sys.stderr, flush=True)
    expected = generate_file(rows, path, fmt, seed)
    print(f"    generated in {expected['generate_seconds'] + expected['write_seconds']:.0f} s, "
          f"{expected['bytes'] / MB:,.0f} MB", file=sys.stderr, flush=True)
    return path, expected


def run_child(job: Job, timeout: float, log: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.ingest", "--child", json.dumps(asdict(job))]
    with log.open("w") as err:  # DuckDB's progress bar and any traceback
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=err, stderr=err)
        finished, sampled = watch(proc, timeout)
        if not finished:
            return {"status": f"killed after {timeout:.0f} s", "sampled_peak_mb": sampled}
    if proc.returncode != 0 or not Path(job.result_file).exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        return {"status": f"error (exit {proc.returncode}): {' / '.join(tail)}", "sampled_peak_mb": sampled}
    result = json.loads(Path(job.result_file).read_text())
    result["sampled_peak_mb"] = sampled
    result["status"] = "ok" if result["checks"]["ok"] else "WRONG: " + "; ".join(result["checks"]["failures"])
    return result


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "—"


def machine_line() -> str:
    import psutil

    return (f"{os.cpu_count()} cores ({_cpu_model()}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"duckdb {_version('duckdb')}, pyarrow {_version('pyarrow')}, pandas {_version('pandas')}, "
            f"numpy {_version('numpy')}")


def _f(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(cases: list[dict[str, Any]], header: str) -> str:
    lines = [header, "",
             ("| rows | format | file MB | variant | ingest s | pool-hours s | total s | rows/s | ≥ 1 M rows/s "
              "| ingest-only rows/s | CPU s | load before→after | peak RSS MB | ledger MB | checks |"),
             "|---:|---|---:|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---|"]
    for c in cases:
        r = c["result"]
        total = r.get("total_seconds")
        rate = c["rows"] / total if total else None
        ingest_rate = c["rows"] / r["ingest_seconds"] if r.get("ingest_seconds") else None
        peak = max(r.get("peak_mb") or 0, r.get("sampled_peak_mb") or 0) or None
        lines.append(
            f"| {c['rows']:,} | {c['format']} | {c['file_mb']:,.0f} | {c['variant']} | {_f(r.get('ingest_seconds'), '.1f')} "
            f"| {_f(r.get('pool_hours_seconds'), '.2f')} | {_f(total, '.1f')} | {_f(rate, ',.0f')} "
            f"| {'—' if rate is None else ('yes' if rate >= TARGET else 'no')} | {_f(ingest_rate, ',.0f')} "
            f"| {_f(r.get('cpu_seconds'), '.1f')} | {_f(r.get('load_before'), '.1f')}→{_f(r.get('load_after'), '.1f')} "
            f"| {_f(peak, ',.0f')} | {_f(r.get('ledger_mb'), ',.0f')} | {r.get('status', '?')} |"
        )
    lines += ["", ("Where the time goes: seconds per pass, summed over its statements (fetches included), wall-clock "
                   "and, after the slash, CPU seconds of all the process's threads (2 cores: CPU ≈ 2 × wall when both "
                   "are busy; CPU is what the pass costs whatever else runs on the machine):"), ""]
    labels: list[str] = []
    for c in cases:
        for part in ("split_ingest", "split_pool_hours"):
            for label in c["result"].get(part, {}):
                if label not in labels and not label.startswith("cpu:"):
                    labels.append(label)
    if labels:
        names = [f"{c['rows'] // 1_000_000 if c['rows'] >= 1_000_000 else c['rows']}{'M' if c['rows'] >= 1_000_000 else ''} "
                 f"{c['format']}{'' if c['variant'] == 'as is' else ' ' + c['variant']}" for c in cases]
        lines += ["| pass | " + " | ".join(names) + " |", "|---|" + "---:|" * len(cases)]
        for label in labels:
            cells = []
            for c in cases:
                r = c["result"]
                split = {**r.get("split_pool_hours", {}), **r.get("split_ingest", {})}
                v, cpu = split.get(label), split.get("cpu:" + label)
                cells.append(_f(v, ".2f") + ("" if cpu is None else f" / {cpu:.2f}"))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", ("rows/s = rows / (ingest + pool-hours seconds), wall-clock. CPU s is the child's CPU time (all "
               "threads) over the same span; load is the 1-minute load average when the case started and ended (the "
               "machine is shared: above ~0.5 other processes were competing for the 2 cores, and wall times are "
               "inflated). Peak RSS is the larger of the child's `ru_maxrss` and the parent's 0.1 s psutil samples; "
               "it includes the interpreter, pandas and pyarrow (~125 MB at start).")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--format", nargs="+", choices=("csv", "parquet"), default=["csv", "parquet"])
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"generated files (default {DEFAULT_CACHE})")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "ingest_results.md")
    ap.add_argument("--src", help="run the ingest code of this directory instead of the repo's (a prototype)")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                    help="DuckDB setting on every ledger connection, e.g. --set threads=2 (repeatable)")
    ap.add_argument("--timeout", type=float, default=900.0, help="kill a measurement after this many seconds")
    ap.add_argument("--label", help="name of the variant in the table (default: --src and --set, or 'as is')")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        job = Job(**json.loads(args.child))
        Path(job.result_file).write_text(json.dumps(run_job(job)))
        return

    variant = args.label or " ".join(filter(None, [f"src={args.src}" if args.src else "", *args.settings])) or "as is"
    started = datetime.now(UTC)
    cases: list[dict[str, Any]] = []
    args.cache.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        for fmt in args.format:
            path, expected = cached_file(rows, fmt, args.seed, args.cache)
            with tempfile.TemporaryDirectory(prefix="ingest-bench-", dir=args.cache) as tmp:
                job = Job(str(path), expected, str(Path(tmp) / "ledger.duckdb"), str(Path(tmp) / "result.json"),
                          args.src, args.settings)
                print(f"[{datetime.now():%H:%M:%S}] {rows:,} rows {fmt} ({variant}) ...", file=sys.stderr, flush=True)
                result = run_child(job, args.timeout, args.cache / f"last-{rows}-{fmt}.log")
            summary = {k: v for k, v in result.items() if not k.startswith(("split", "checks"))}
            print(f"    -> {json.dumps(summary)}", file=sys.stderr, flush=True)
            cases.append({"rows": rows, "format": fmt, "file_mb": expected["bytes"] / MB, "variant": variant,
                          "result": result})

    command = "python -m benchmarks.ingest " + shlex.join(sys.argv[1:] if argv is None else argv)
    header = (f"# Ingest benchmark\n\nMachine: {machine_line()}; run {started:%Y-%m-%d %H:%M} UTC.\n\n"
              f"Files from `benchmarks.focus_generator` (seed {args.seed}): one month of FOCUS 1.2 rows, 57 columns, "
              f"~80 % hourly EC2 usage over 200 Linux + 40 Windows pools, 6 % daily Azure VM rows over 40 pools. Each case: `billing.ingest.ingest` into a "
              f"fresh ledger, then `billing.pool_hours.pool_hours_duckdb`, in a fresh interpreter. Target ≥ "
              f"{TARGET:,} rows/s.\n\nReproduce from the repo root: `{command.strip()}`")
    text = markdown(cases, header)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    (args.cache / f"results-{started:%Y%m%dT%H%M%S}.json").write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
