"""Read latency of the HTTP API while plans are being solved.

``python -m benchmarks.api_reads [--reads 200] [--solves 2] [--pools 100] [--days 180]``

Starts ``commitplan serve`` as a real subprocess on a free loopback port with a fresh SQLite
database in a temporary data directory, creates keys with :mod:`store`, uploads a generated
estate (``scenarios.sample_estate.generate_estate``), then fires ``--reads`` concurrent GETs
(a mix of ``GET /v1/plans/{id}``, ``GET /v1/plans`` and ``GET /v1/datasets``):

1. baseline: no solve running;
2. under load: after ``POST /v1/plans`` ×``--solves`` and only once every one of them is
   ``running`` (checked before and after each burst of reads).

Reports p50/p95/p99/max per burst, checks that the solves finish ``done``, and writes the table
to ``benchmarks/api_reads_results.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy

import store
from benchmarks.raw_http import RawConnection
from scenarios.sample_estate import generate_estate

RESULTS = Path(__file__).with_name("api_reads_results.md")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_postgres(admin_url: str) -> str:
    """URL of a new, empty database on the server of ``admin_url``."""
    name = f"commitplan_bench_{secrets.token_hex(4)}"
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sqlalchemy.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres(admin_url: str, url: str) -> None:
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{sqlalchemy.make_url(url).database}" WITH (FORCE)'))
    engine.dispose()


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    ms = np.asarray(latencies_s) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max()), "mean": float(ms.mean())}


async def burst(base: str, token: str, n: int, plan_ids: list[str], inflight: int | None = None,
                timeout: float = 120) -> tuple[list[float], list[float], dict[str, int], float]:
    """``n`` GETs started at once (at most ``inflight`` on the wire when given); returns (latencies in s,
    per-request latencies in s, counts of non-200 outcomes, wall seconds). A latency is measured from
    the burst start to the response; a per-request latency from sending to the response."""
    paths = []
    for i in range(n):
        kind = i % 3
        paths.append(f"/v1/plans/{plan_ids[i % len(plan_ids)]}" if kind == 0
                     else "/v1/plans?limit=50" if kind == 1 else "/v1/datasets?limit=50")
    conns = min(n, inflight or n)
    auth = {"Authorization": f"Bearer {token}"}
    # open the connections first, so the burst measures request handling, not connection set-up
    pool = await asyncio.gather(*(RawConnection.open(base, auth) for _ in range(conns)))
    free: asyncio.Queue[RawConnection] = asyncio.Queue()
    for c in pool:
        free.put_nowait(c)
    start = asyncio.Event()

    async def one(path: str) -> tuple[float, str, float]:
        await start.wait()
        conn = await free.get()
        sent = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(conn.get(path), timeout)
            outcome = str(status)
            if status == 200 and not body.startswith(b"{"):
                outcome = "not JSON"
            free.put_nowait(conn)
        except asyncio.TimeoutError:
            outcome = "timeout"
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            outcome = type(e).__name__
        done = time.perf_counter()
        return done - t0, outcome, done - sent

    tasks = [asyncio.create_task(one(p)) for p in paths]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    await asyncio.gather(*(c.close() for c in pool))
    errors: dict[str, int] = {}
    for _, outcome, _ in results:
        if outcome != "200":
            errors[outcome] = errors.get(outcome, 0) + 1
    return [r[0] for r in results], [r[2] for r in results], errors, wall


def statuses(client: httpx.Client, ids: list[str]) -> list[str]:
    return [client.get(f"/v1/plans/{i}").json()["status"] for i in ids]


def wait_status(client: httpx.Client, ids: list[str], want: set[str], timeout: float) -> list[str]:
    end = time.monotonic() + timeout
    while True:
        s = statuses(client, ids)
        if all(x in want for x in s) or time.monotonic() > end:
            return s
        time.sleep(0.05)


def upload(client: httpx.Client, kind: str, path: Path) -> str:
    body = gzip.compress(path.read_bytes(), compresslevel=1)
    r = client.post("/v1/datasets", data={"kind": kind}, files={"file": (path.name + ".gz", body, "application/gzip")})
    r.raise_for_status()
    return r.json()["id"]


def fmt_row(label: str, p: dict[str, float], q: dict[str, float], errors: dict[str, int], wall: float) -> str:
    err = ", ".join(f"{v}× {k}" for k, v in sorted(errors.items())) or "0"
    return (f"| {label} | {p['n']} | {err} | {p['p50']:.0f} | {p['p95']:.0f} | {p['p99']:.0f} | {p['max']:.0f} "
            f"| {q['p50']:.1f} | {q['p99']:.1f} | {q['max']:.1f} | {wall * 1000:.0f} | {p['n'] / wall:.0f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=200)
    ap.add_argument("--solves", type=int, default=2)
    ap.add_argument("--pools", type=int, default=100)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=3, help="bursts per phase")
    ap.add_argument("--job-workers", type=int, default=None, help="default: --solves")
    ap.add_argument("--inflight", type=int, default=None,
                    help="client-side cap on requests in flight (default: all --reads at once)")
    ap.add_argument("--timeout", type=float, default=120, help="per-request client timeout, s")
    ap.add_argument("--executor", choices=("default", "threads"), default="default",
                    help="threads: force api.jobs.JobRunner to solve in its threads (the pre-process-pool behaviour)")
    ap.add_argument("--postgres", metavar="ADMIN_URL", nargs="?", const="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                    help="serve from a fresh database on this PostgreSQL server (dropped afterwards) instead of SQLite")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", default="", help="a line added under the table (e.g. which executor)")
    args = ap.parse_args(argv)
    workers = args.job_workers or args.solves

    tmp = Path(tempfile.mkdtemp(prefix="commitplan-bench-"))
    data = tmp / "data"
    data.mkdir()
    url = fresh_postgres(args.postgres) if args.postgres else f"sqlite:///{data / 'commitplan.db'}"
    sessions = store.connect(url)
    with sessions() as s:
        admin = store.create_key(s, "bench-procurement", "procurement")[1]
        viewer = store.create_key(s, "bench-viewer", "viewer")[1]
    sessions.kw["bind"].dispose()

    t = time.perf_counter()
    big = generate_estate(args.pools, args.days, seed=1).write(tmp / "big")
    small = generate_estate(4, 30, seed=1).write(tmp / "small")
    print(f"estate {args.pools} pools x {args.days} days generated in {time.perf_counter() - t:.1f} s "
          f"(usage {big['usage'].stat().st_size / 1e6:.1f} MB)", flush=True)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "COMMITPLAN_DATABASE_URL"}
    if args.postgres:
        env["COMMITPLAN_DATABASE_URL"] = url
    env.update(COMMITPLAN_DATA_DIR=str(data), COMMITPLAN_MAX_UPLOAD_BYTES=str(200 * 1024 * 1024))
    log = (tmp / "serve.log").open("wb")
    launcher = ["-m", "api.cli"] if args.executor == "default" else [
        "-c", ("import sys, api.jobs as j; d = j.JobRunner.__init__.__defaults__; "
        "j.JobRunner.__init__.__defaults__ = (d[0], False) if len(d) == 2 else d; "
        "from api.cli import main; sys.argv[0] = 'commitplan'; main()")]
    server = subprocess.Popen([sys.executable, *launcher, "serve", "--port", str(port),
                               "--workers-jobs", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              cwd=Path(__file__).resolve().parents[1])
    rows: list[str] = []
    try:
        w = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=300)
        end = time.monotonic() + 60
        while True:
            try:
                if w.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > end or server.poll() is not None:
                raise SystemExit(f"server did not come up; log: {tmp / 'serve.log'}")
            time.sleep(0.1)

        # a few small done plans to read
        su, sp = upload(w, "usage", small["usage"]), upload(w, "prices", small["prices"])
        read_ids = [w.post("/v1/plans", json={"name": f"small {i}", "usage_dataset": su, "prices_dataset": sp})
                    .json()["id"] for i in range(5)]
        assert all(x == "done" for x in wait_status(w, read_ids, {"done", "failed"}, 120)), "small plans failed"
        t = time.perf_counter()
        bu, bp = upload(w, "usage", big["usage"]), upload(w, "prices", big["prices"])
        print(f"uploaded the big estate in {time.perf_counter() - t:.1f} s", flush=True)

        # baseline
        for r in range(args.rounds):
            lat, req, errors, wall = asyncio.run(burst(base, viewer, args.reads, read_ids, args.inflight, args.timeout))
            rows.append(fmt_row(f"baseline (no solve), round {r + 1}", percentiles(lat), percentiles(req), errors, wall))
            print(rows[-1], flush=True)

        # under load
        t_post = time.perf_counter()
        solve_ids = [w.post("/v1/plans", json={"name": f"big {i}", "usage_dataset": bu, "prices_dataset": bp})
                     .json()["id"] for i in range(args.solves)]
        s = wait_status(w, solve_ids, {"running", "done", "failed"}, 60)
        assert all(x == "running" for x in s), f"solves not all running: {s}"
        time.sleep(1.0)  # past claim + dataset load: into the solve proper
        load_rows = 0
        for r in range(args.rounds):
            before = statuses(w, solve_ids)
            lat, req, errors, wall = asyncio.run(burst(base, viewer, args.reads, read_ids, args.inflight, args.timeout))
            after = statuses(w, solve_ids)
            ok = all(x == "running" for x in before + after)
            label = f"{args.solves} solves running, round {r + 1}" + ("" if ok else " (a solve ended during the burst)")
            rows.append(fmt_row(label, percentiles(lat), percentiles(req), errors, wall))
            print(rows[-1], flush=True)
            load_rows += ok
            if not all(x == "running" for x in after):
                break
        final = wait_status(w, solve_ids, {"done", "failed"}, 900)
        total = time.perf_counter() - t_post
        plans = [w.get(f"/v1/plans/{i}").json() for i in solve_ids]
        solve_s = [(dt.datetime.fromisoformat(p["finished_at"]) - dt.datetime.fromisoformat(p["started_at"]))
                   .total_seconds() for p in plans if p["finished_at"] and p["started_at"]]
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if args.postgres:
            drop_postgres(args.postgres, url)

    def v(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    lines = [
        "# API read latency while plans solve",
        "",
        f"`python -m benchmarks.api_reads --reads {args.reads} --solves {args.solves} --pools {args.pools} "
        f"--days {args.days} --rounds {args.rounds}" + (" --postgres" if args.postgres else "")
        + (f" --inflight {args.inflight}" if args.inflight else "") + f"` — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        (f"- Python {platform.python_version()}; fastapi {v('fastapi')}, uvicorn {v('uvicorn')}, httpx {v('httpx')}, "
        f"SQLAlchemy {v('sqlalchemy')}, highspy {v('highspy')}"),
        f"- server: `commitplan serve` subprocess on 127.0.0.1, {'PostgreSQL' if args.postgres else 'SQLite'}, {workers} job workers, solves in "
        + ("the job threads (forced)" if args.executor == "threads" else "api.jobs default executor"),
        (f"- estate: {args.pools} pools × {args.days} days hourly (usage CSV "
        f"{big['usage'].stat().st_size / 1e6:.1f} MB, uploaded gzipped)"),
        f"- solves: {args.solves} concurrent, status {', '.join(final)}; started→finished "
        + ", ".join(f"{x:.1f} s" for x in solve_s) + f"; POST→all finished {total:.1f} s",
        f"- reads: {args.reads} concurrent GETs per burst (⅓ `GET /v1/plans/{{id}}`, ⅓ `GET /v1/plans`, "
        "⅓ `GET /v1/datasets`), viewer key, bare asyncio HTTP/1.1 client (benchmarks/raw_http.py), connections opened before the burst, "
        + (f"at most {args.inflight} in flight, " if args.inflight else "all in flight at once, ")
        + "latency = burst start → response (includes waiting for a free slot), "
        "per-request = sent → response; "
        f"under-load bursts counted only while every solve was `running` before and after ({load_rows} of them)",
    ]
    if args.note:
        lines.append(f"- {args.note}")
    lines += ["", ("| phase | reads | non-200 (count× outcome) | p50 ms | p95 ms | p99 ms | max ms "
              "| per-request p50 ms | per-request p99 ms | per-request max ms | burst wall ms | reads/s |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a") as f:
            f.write(text + "\n")
    return 0 if all(x == "done" for x in final) else 1


if __name__ == "__main__":
    raise SystemExit(main())
