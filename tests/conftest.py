"""Shared fixtures: a database URL for each backend the store supports (SQLite and PostgreSQL).

``db_url`` is parametrized over both; a test using it runs twice. PostgreSQL comes from
``COMMITPLAN_TEST_POSTGRES_URL`` (default: ``root``, then ``postgres``, at 127.0.0.1:5432/test).
Each test session creates its own database ``commitplan_test_<random>`` and drops it at the end;
each test gets a fresh schema in it (through ``search_path``), so tests never see each other's rows
and parallel runs (xdist, several developers) never collide. PostgreSQL being unreachable is a
failure with instructions, never a silent skip: CI has it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

PG_CANDIDATES = (
    "postgresql+psycopg://root@127.0.0.1:5432/test",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
)


def _admin_url() -> str:
    explicit = os.environ.get("COMMITPLAN_TEST_POSTGRES_URL")
    candidates = (explicit,) if explicit else PG_CANDIDATES
    errors = []
    for url in candidates:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url
        except OperationalError as e:
            errors.append(f"  {url}: {str(e.orig).strip().splitlines()[0]}")
        finally:
            engine.dispose()
    pytest.fail("PostgreSQL is required by the store tests (CI runs them on both databases) but could not be "
                "reached:\n" + "\n".join(errors) + "\nStart it (e.g. `service postgresql start`) or set "
                "COMMITPLAN_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST:PORT/DB.", pytrace=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session (dropped afterwards)."""
    admin = _admin_url()
    name = f"commitplan_test_{secrets.token_hex(4)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def _fresh_database(kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SQLite file, or a fresh schema in the session's PostgreSQL database (dropped afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'commitplan.db'}"
        return
    base = request.getfixturevalue("pg_database")
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database per test, on each backend."""
    with _fresh_database(request.param, request, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database shared by a module's tests, on each backend."""
    with _fresh_database(request.param, request, tmp_path_factory) as url:
        yield url


# --------------------------------------------------------------------------- the HTTP service

@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from scenarios.sample_estate import generate_estate

    return generate_estate(4, 30, seed=1).write(tmp_path_factory.mktemp("estate"))


@pytest.fixture
def env(db_url: str, estate: dict):
    """The app on ``db_url`` behind a test client, with keys alice/paula (procurement), fred/fiona
    (finance), adam (admin) and victor (viewer)."""
    from fastapi.testclient import TestClient

    import store
    from api.app import create_app
    from api.settings import Settings
    from tests.api_env import Env

    app = create_app(Settings(database_url=db_url, max_upload_bytes=1_000_000, job_workers=2, db_pool_size=30))
    with TestClient(app) as client:
        keys = {}
        with app.state.sessions() as s:
            for name, role in [("alice", "procurement"), ("paula", "procurement"), ("fred", "finance"),
                               ("fiona", "finance"), ("adam", "admin"), ("victor", "viewer")]:
                keys[name] = store.create_key(s, name, role)[1]
        yield Env(client, app, app.state.sessions, keys, estate)
