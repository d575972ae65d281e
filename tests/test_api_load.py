"""Many concurrent reads against a real server (uvicorn on loopback) with a small connection pool.

Regression for a stall found by ``benchmarks/api_reads.py``: with more requests in flight than
worker threads, finished requests held every pooled connection while they waited for a thread to
serialize their response, and the threads waited for a connection: every read stalled until the
pool's 30 s timeout, then failed. Admission control (``api.app.Admission``) keeps the requests
inside the app below the thread count, so a pool of any size makes progress. No timing is asserted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

import store
from api.app import create_app
from api.settings import Settings

READS = 150


@pytest.fixture
def server(db_url: str) -> Iterator[tuple[str, str]]:
    """(base URL, viewer key) of the app served by uvicorn on a free port, with 3 + 3 connections."""
    app = create_app(Settings(database_url=db_url, job_workers=1, db_pool_size=3))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not (srv.started and srv.servers):
        assert time.monotonic() < end and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    with app.state.sessions() as s:
        viewer = store.create_key(s, "viewer", "viewer")[1]
    try:
        yield f"http://127.0.0.1:{port}", viewer
    finally:
        srv.should_exit = True
        thread.join(30)


def test_many_concurrent_reads_all_answer_with_a_small_pool(server: tuple[str, str]) -> None:
    base, key = server
    paths = ["/v1/plans", "/v1/datasets", "/v1/plans?status=done"]
    barrier = threading.Barrier(READS)
    outcomes: list[str] = [""] * READS

    def read(i: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            barrier.wait()
            try:
                r = c.get(paths[i % len(paths)])
                outcomes[i] = str(r.status_code) if r.status_code != 200 or "items" in r.json() else "bad body"
            except httpx.HTTPError as e:
                outcomes[i] = type(e).__name__

    threads = [threading.Thread(target=read, args=(i,)) for i in range(READS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert Counter(outcomes) == {"200": READS}


def test_healthz_answers_while_the_app_is_full(server: tuple[str, str]) -> None:
    """``/healthz`` bypasses admission: a load balancer's probe must not queue behind reads."""
    base, _ = server
    assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
