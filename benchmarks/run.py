"""Speed and memory of the core planner on generated estates (DESIGN.md §6).

    python -m benchmarks.run [--quick] [--sizes 50x90 200x365 1000x365] [--limit 600] [--naive-all]
                             [--out benchmarks/results.md]

Each size is a ``generate_estate(pools, days, seed, savings_plans="two")`` estate (six reservation
offerings per pool — 1y/3y × no/partial/all upfront — a compute savings plan over all pools and an
instance savings plan over one family-region), written to CSV once by this process. Every
measurement then runs in a subprocess of its own, which reads the CSVs back, builds the instance and
solves, so that the peak memory (the child's ``ru_maxrss``) belongs to that one case:

- the cutting-plane decomposition to ``--gap`` (default 1e-4) at every size;
- where the naive pool-hour LP runs (by default only up to 50 pools × 2,160 h; ``--naive-all`` for
  every size), also the decomposition to ``--exact-gap`` (default 1e-6) and the naive LP in HiGHS,
  with speedup = naive seconds / decomposition seconds and the relative difference of objectives.
  The naive LP has no time limit of its own: its subprocess is killed after ``--limit`` + 60 s.

Solve seconds exclude reading and building the instance (reported separately). Timings are
wall-clock; on a shared machine they carry the noise of whatever else runs.
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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.child import watch

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = ("50x90", "200x365", "1000x365")
QUICK_SIZES = ("50x90",)
NAIVE_DEFAULT_MAX = 50 * 2160  # pool-hours up to which the naive LP runs without --naive-all
MB = 2**20


@dataclass
class Job:
    """One measurement, run in its own subprocess."""

    data_dir: str
    method: str  # "decomposition" or "naive"
    gap: float  # target gap of the decomposition (unused by the naive LP)
    limit: float  # seconds
    result_file: str


# --------------------------------------------------------------------------- child side


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _time_calls(owner: type, name: str, spent: dict[str, float]) -> None:
    """Wrap ``owner.name`` so the seconds spent in it add up in ``spent[name]`` (profiling only)."""
    original = getattr(owner, name, None)
    if original is None:
        return
    spent[name] = 0.0

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t

    setattr(owner, name, timed)


def _solve_decomposition(inst: Any, gap: float, limit: float) -> dict[str, Any]:
    import numpy as np

    from solver import decomposition as dec
    from solver import master
    from solver.coverage import evaluate
    from solver.newsvendor import NewsvendorLevels

    # load the compiled kernels (numba's on-disk cache) before timing: a once-per-process cost
    t = time.perf_counter()
    cov = evaluate(inst, np.zeros(inst.n_decisions), duals=True)
    NewsvendorLevels(inst).levels(cov.e)
    warm = time.perf_counter() - t

    spent: dict[str, float] = {}
    _time_calls(dec._Cuts, "at", spent)  # hourly subproblems: greedy bill, duals, cluster cuts
    _time_calls(master.HighsMaster, "solve", spent)  # master LP (HiGHS simplex, warm-started)
    _time_calls(master.HighsMaster, "add_cuts", spent)
    r = dec.solve_decomposition(inst, gap=gap, time_limit=limit)
    labels = {"at": "hourly subproblems", "solve": "master LP", "add_cuts": "adding cuts"}
    split = {labels[k]: v for k, v in spent.items()}
    split["other"] = r.seconds - sum(spent.values())
    return {
        "seconds": r.seconds, "iterations": r.iterations, "upper": r.upper, "lower": r.lower,
        "gap": r.gap, "status": r.status, "split": split, "kernel_warmup_seconds": warm,
    }


def _solve_naive(inst: Any) -> dict[str, Any]:
    # solve_naive(inst, "highs") is exactly solve_lp(build_naive_lp(inst), "highs", method="ipm");
    # called in two steps here to report the LP's size and the build time apart.
    from solver.backends import solve_lp
    from solver.coverage import total_cost
    from solver.naive_lp import build_naive_lp

    t = time.perf_counter()
    lp = build_naive_lp(inst)
    built = time.perf_counter() - t
    res = solve_lp(lp, "highs", method="ipm")
    seconds = time.perf_counter() - t
    x = res.x[: inst.n_decisions].clip(0, None)
    billed = total_cost(inst, x) if res.status.value == "optimal" else float("nan")
    return {
        "seconds": seconds, "lp_build_seconds": built, "upper": res.objective, "billed": billed,
        "status": res.status.value, "lp_rows": lp.A.shape[0], "lp_cols": lp.A.shape[1], "lp_nnz": lp.A.nnz,
    }


def run_job(job: Job) -> dict[str, Any]:
    from models.readers import read_price_book, read_usage
    from solver.instance import build_instance

    t = time.perf_counter()
    prices = read_price_book(Path(job.data_dir) / "prices.csv")
    usage = read_usage(Path(job.data_dir) / "usage.csv", known_pools=prices.on_demand)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    inst = build_instance(usage, prices)
    build_s = time.perf_counter() - t
    out: dict[str, Any] = {
        "read_seconds": read_s, "build_seconds": build_s, "decisions": inst.n_decisions,
        "rss_before_solve_mb": psutil.Process().memory_info().rss / MB,
    }
    out |= _solve_naive(inst) if job.method == "naive" else _solve_decomposition(inst, job.gap, job.limit)
    out["peak_mb"] = _peak_rss_mb()
    return out


# --------------------------------------------------------------------------- parent side


def run_child(job: Job, timeout: float) -> dict[str, Any]:
    """Run ``job`` in a fresh interpreter; kill it after ``timeout`` s (peak memory then sampled)."""
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", json.dumps(asdict(job))]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)  # HiGHS prints a banner on stdout
    finished, sampled = watch(proc, timeout, interval=0.2)
    if not finished:
        return {"status": f"killed after {timeout:.0f} s", "seconds": timeout, "peak_mb": sampled}
    if proc.returncode != 0 or not Path(job.result_file).exists():
        return {"status": f"error (exit {proc.returncode})", "peak_mb": sampled}
    return json.loads(Path(job.result_file).read_text())


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"size must be POOLSxDAYS such as 50x90, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def make_estate(pools: int, days: int, seed: int, out_dir: Path) -> tuple[int, str]:
    """Write the estate's CSVs; returns the pools generated (fewer if the generator caps them) and a note."""
    from scenarios.sample_estate import generate_estate

    note = ""
    try:
        estate = generate_estate(pools, days, seed, savings_plans="two")
    except ValueError as exc:
        m = re.search(r"at most (\d+) pools", str(exc))
        if not m:
            raise
        note = f"generate_estate: {exc}; ran the largest it makes, {m.group(1)} pools, instead of {pools}"
        pools = int(m.group(1))
        estate = generate_estate(pools, days, seed, savings_plans="two")
    estate.write(out_dir)
    return len(estate.pools), note


def _fmt(value: Any, spec: str, missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def row_cells(case: dict[str, Any]) -> list[str]:
    r = case["result"]
    naive = case["method"] == "naive"
    return [
        case["size"], f"{case['pools']:,} × {case['hours']:,}", case["method"],
        "LP optimal" if naive else f"{case['gap_target']:g}",
        _fmt(r.get("seconds"), ".1f"), "—" if naive else _fmt(r.get("iterations"), "d"),
        "—" if naive else _fmt(r.get("gap"), ".1e"), _fmt(r.get("peak_mb"), ",.0f"),
        r.get("status", "?"), case.get("speedup") or "",
    ]


HEADERS = ["size", "pools × hours", "method", "gap target", "seconds", "iterations",
           "certified gap", "peak memory MB", "status", "speedup vs naive"]


def markdown(cases: list[dict[str, Any]], header: str, notes: list[str]) -> str:
    lines = [header, "", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row_cells(c)) + " |" for c in cases]
    lines += ["", "Details (seconds are wall-clock; read = CSV → UsageMatrix/PriceBook, build = build_instance):", "",
              "| size | method | gap target | read s | build s | decisions | RSS before solve MB | objective (upper) "
              "| lower bound | time split |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        r = c["result"]
        split = ", ".join(f"{k} {v:.2f} s" for k, v in r.get("split", {}).items())
        if "kernel_warmup_seconds" in r:
            split += f" (plus {r['kernel_warmup_seconds']:.2f} s loading the compiled kernels, untimed)"
        if c["method"] == "naive" and "lp_rows" in r:
            split = f"LP {r['lp_rows']:,} rows × {r['lp_cols']:,} cols, {r['lp_nnz']:,} nnz; build {r['lp_build_seconds']:.1f} s"
        lines.append(
            f"| {c['size']} | {c['method']} | {'—' if c['method'] == 'naive' else format(c['gap_target'], 'g')} "
            f"| {_fmt(r.get('read_seconds'), '.1f')} | {_fmt(r.get('build_seconds'), '.2f')} "
            f"| {_fmt(r.get('decisions'), 'd')} | {_fmt(r.get('rss_before_solve_mb'), ',.0f')} "
            f"| {_fmt(r.get('upper'), ',.2f')} | {_fmt(r.get('lower'), ',.2f')} | {split} |"
        )
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def compare(cases: list[dict[str, Any]], size: str) -> list[str]:
    """Fill the speedup column of ``size``'s decomposition rows; return notes on naive vs decomposition."""
    here = {(c["method"], c["gap_target"]): c for c in cases if c["size"] == size}
    naive = next((c for (m, _), c in here.items() if m == "naive"), None)
    if naive is None or naive["result"].get("status") != "optimal":
        return []
    ns, obj = naive["result"]["seconds"], naive["result"]["upper"]
    notes = []
    for (method, gap), c in here.items():
        r = c["result"]
        if method != "decomposition" or "upper" not in r:
            continue
        c["speedup"] = f"{ns / r['seconds']:.1f}×"
        rel = abs(r["upper"] - obj) / abs(obj)
        notes.append(f"{size}, decomposition to gap {gap:g}: speedup {ns / r['seconds']:.1f}× "
                     f"({ns:.1f} s naive / {r['seconds']:.2f} s); objective {r['upper']:,.4f} vs naive LP {obj:,.4f}: "
                     f"relative difference {rel:.1e}; naive LP in [lower, upper] = "
                     f"{r['lower'] - 1e-9 * abs(obj) <= obj <= r['upper'] + 1e-9 * abs(obj)}")
    billed = naive["result"].get("billed")
    if billed is not None:
        notes.append(f"{size}: the naive LP's purchases billed by the greedy rule cost {billed:,.4f} "
                     f"(relative difference to its LP objective {abs(billed - obj) / abs(obj):.1e})")
    return notes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", type=parse_size, help="POOLSxDAYS, e.g. 50x90 200x365 1000x365")
    ap.add_argument("--quick", action="store_true", help="only 50x90 (a fast check)")
    ap.add_argument("--gap", type=float, default=1e-4, help="target gap of the decomposition (default 1e-4)")
    ap.add_argument("--exact-gap", type=float, default=1e-6, help="gap for the comparison with the naive LP")
    ap.add_argument("--limit", type=float, default=600.0, help="time limit per solve in seconds (default 600)")
    ap.add_argument("--naive-all", action="store_true", help="run the naive LP at every size (very slow)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results.md"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        job = Job(**json.loads(args.child))
        Path(job.result_file).write_text(json.dumps(run_job(job)))
        return

    sizes = args.sizes or [parse_size(s) for s in (QUICK_SIZES if args.quick else DEFAULT_SIZES)]
    cases: list[dict[str, Any]] = []
    notes: list[str] = []
    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="commitplan-bench-") as tmp:
        for pools_asked, days in sizes:
            data = Path(tmp) / f"{pools_asked}x{days}"
            pools, note = make_estate(pools_asked, days, args.seed, data)
            if note:
                notes.append(note)
            hours = days * 24
            size = f"{pools_asked}x{days}" if pools == pools_asked else f"{pools}x{days} (asked {pools_asked})"
            plan = [("decomposition", args.gap)]
            if args.naive_all or pools * hours <= NAIVE_DEFAULT_MAX:
                plan += [("decomposition", args.exact_gap), ("naive", 0.0)]
            for method, gap in plan:
                job = Job(str(data), method, gap, args.limit, str(data / f"{method}-{gap:g}.json"))
                print(f"[{datetime.now():%H:%M:%S}] {size} {method} gap {gap:g} ...", file=sys.stderr, flush=True)
                # the decomposition checks its limit between iterations; the naive LP has none of its own
                timeout = args.limit + 60 if method == "naive" else 2 * args.limit + 120
                result = run_child(job, timeout)
                print(f"    -> {json.dumps({k: v for k, v in result.items() if k != 'split'})}", file=sys.stderr, flush=True)
                cases.append({"size": size, "pools": pools, "hours": hours, "method": method,
                              "gap_target": gap, "result": result})
            notes += compare(cases, size)

    command = "python -m benchmarks.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    header = (f"# commitplan benchmarks\n\nMachine: {os.cpu_count()} cores ({platform.machine()}, "
              f"{platform.system()} {platform.release()}), Python {platform.python_version()}, "
              f"highspy {metadata.version('highspy')}; run {started:%Y-%m-%d %H:%M} UTC; "
              f"estates from generate_estate(pools, days, seed={args.seed}, savings_plans=\"two\"); "
              f"time limit {args.limit:g} s per solve.\n\nReproduce from the repo root: `{command.strip()}`")
    text = markdown(cases, header, notes)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
