"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis, in-process ASGI).

Every operation gets generated requests (valid and invalid parameters and bodies), sent with a valid
API key: mostly admin, some procurement and finance. Some requests have their path ids replaced by
real ids (a finished plan, a submitted one, datasets) so the state-changing paths run too. Checked:
no 5xx, and every error response is RFC 9457 problem+json whose ``status`` is the response's code.
Reproducible: hypothesis runs derandomized (a fixed seed per operation) with no example database.
Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

import store  # noqa: E402
from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from scenarios.sample_estate import generate_estate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PROBLEM = "application/problem+json"
# (role, examples per operation): 21 operations x up to 70 = 1,400 calls per database
RUNS = [("admin", 50), ("procurement", 10), ("finance", 10)]
MIN_CALLS = 1000


def _wait_done(sessions, plan_id, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with sessions() as s:
            if s.get(store.Plan, plan_id).status in ("done", "failed"):
                return
        time.sleep(0.05)
    raise AssertionError(f"plan {plan_id} was not solved in {timeout} s")


@pytest.fixture(scope="module")
def fuzz_env(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    from schemathesis.python.asgi import shutdown_lifespans

    tmp = tmp_path_factory.mktemp("fuzz")
    files = generate_estate(4, 30, seed=1).write(tmp / "estate")
    url = module_db_url
    sessions = store.connect(url)
    alice = store.Actor("alice", store.Role.PROCUREMENT)
    with sessions() as s:
        tokens = {role: store.create_key(s, f"fuzz-{role}", role)[1] for role, _ in RUNS}
        usage = store.add_dataset(s, alice, "usage", "usage.csv", files["usage"].read_bytes()).value
        prices = store.add_dataset(s, alice, "prices", "prices.csv", files["prices"].read_bytes()).value
        plans = [store.create_plan(s, alice, f"plan {i}", usage.id, prices.id).value.id for i in range(2)]
        scenario = store.add_scenario(s, alice, "growth.yaml", "overlays:\n  - kind: growth\n    pools: '*'\n"
                                      "    factor: 1.2\n").value
    app = create_app(Settings(database_url=url, job_workers=1, max_upload_bytes=200_000))
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)  # starts the app's lifespan (workers)
    try:
        for pid in plans:
            _wait_done(sessions, pid)
        with sessions() as s:
            assert store.submit(s, plans[1], alice).ok
        ids = {"plan_id": [str(p) for p in plans], "dataset_id": [str(usage.id), str(prices.id)],
               "scenario_id": [str(scenario.id)]}
        yield schema, tokens, ids, sessions
    finally:
        shutdown_lifespans()
        sessions.kw["bind"].dispose()


def _check(case, response) -> str | None:
    """What is wrong with the response, or None."""
    status = response.status_code
    ctype = response.headers.get("content-type")  # schemathesis' Response: header -> list of values
    ctype = ctype[0] if isinstance(ctype, list) and len(ctype) == 1 else ctype
    if status >= 500:
        return f"server error {status}: {response.text[:300]}"
    if status >= 400:
        if ctype != PROBLEM:
            return f"{status} with content-type {ctype!r}, not problem+json"
        body = response.json()
        if not {"type", "title", "status", "detail"} <= set(body) or body["status"] != status:
            return f"{status}: malformed problem body {body!r}"
    return None


def test_fuzz_every_operation(fuzz_env: tuple) -> None:
    schema, tokens, ids, sessions = fuzz_env
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    calls, failures = 0, []
    started = time.monotonic()
    for role, n in RUNS:
        for op in operations:
            counter = iter(range(1_000_000))

            @settings(max_examples=n, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def run(case) -> None:
                nonlocal calls
                i = next(counter)
                for name, real in ids.items():  # every third case on real ids: the state-changing paths
                    if case.path_parameters and name in case.path_parameters and i % 3 == 0:
                        case.path_parameters[name] = real[i // 3 % len(real)]
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens[role]}"}
                calls += 1
                try:
                    response = case.call()
                except Exception as e:  # the app raised through the ASGI adapter: a 500 in production
                    failures.append(f"{role} {op.label}: raised {e!r}\n  {case.as_curl_command()[:400]}")
                    return
                problem = _check(case, response)
                if problem:
                    failures.append(f"{role} {op.label}: {problem}\n  {case.as_curl_command()[:400]}")

            run()
    elapsed = time.monotonic() - started
    print(f"fuzz: {calls} calls over {len(operations)} operations in {elapsed:.1f} s")
    assert not failures, f"{len(failures)} bad responses:\n" + "\n".join(failures[:20])
    assert calls >= MIN_CALLS, f"only {calls} calls in {elapsed:.0f} s"
    with sessions() as s:
        assert store.verify(s).ok  # the fuzzing never broke the audit chain
