"""Where the database is, how to connect to it, and how to bring its schema to the latest version.

SQLite needs nothing set up: a file in the data directory. PostgreSQL is chosen by URL
(``COMMITPLAN_DATABASE_URL``). Writers start their transaction with :func:`writing`, which on
SQLite issues ``BEGIN IMMEDIATE``: SQLite then queues writers on its single write lock (waiting up
to the busy timeout) instead of letting two deferred transactions read the same chain head and
fail (or fork) when both try to write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_S = 30.0
_WRITE = "commitplan_write"
_WRITING = "commitplan_writing"  # session.info flag: an outer writing() block is open


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, else ``COMMITPLAN_DATA_DIR``, else ``$XDG_DATA_HOME/commitplan`` (created)."""
    if explicit is None:
        explicit = os.environ.get("COMMITPLAN_DATA_DIR")
    if explicit is None:
        xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        explicit = Path(xdg) / "commitplan"
    path = Path(explicit).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean psycopg 3 (the driver we ship), not psycopg2."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def database_url(data_dir_path: str | os.PathLike[str] | None = None) -> str:
    """``COMMITPLAN_DATABASE_URL``, else a SQLite file ``commitplan.db`` in the data directory."""
    url = os.environ.get("COMMITPLAN_DATABASE_URL")
    if url:
        return normalize_url(url)
    return f"sqlite:///{data_dir(data_dir_path) / 'commitplan.db'}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings the store relies on (extra ``kwargs`` go to ``create_engine``)."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    connect_args = {"timeout": BUSY_TIMEOUT_S, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, much faster
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (the API returns them after writing)."""
    return sessionmaker(engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Start ``session``'s transaction as a writer (``BEGIN IMMEDIATE`` on SQLite).

    A session still in a read-only transaction (e.g. the API key was just looked up) is committed
    first: nothing is pending, and only a transaction that starts as a writer is safe on SQLite.
    """
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("the session has unsaved changes: commit or roll back before a store operation")
        session.commit()
    session.connection(execution_options={_WRITE: True})


@contextmanager
def writing(session: Session) -> Iterator[Session]:
    """One atomic write: begin as a writer, commit on success, roll back on any error.

    Re-entrant: inside an outer ``writing`` block on the same session an inner one joins the outer
    transaction (no BEGIN, no COMMIT of its own), so a caller can make several store operations, or
    a store operation plus its idempotency record (:func:`store.idempotency.run_once`), one atomic
    write. An error inside propagates and the outermost block rolls everything back.
    """
    if session.info.get(_WRITING):
        yield session
        return
    begin_write(session)
    session.info[_WRITING] = True
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(_WRITING, None)


def alembic_config(url: str | None = None) -> Config:
    """The Alembic configuration, built in code: the migrations ship inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: :func:`database_url`) to ``revision``."""
    engine = make_engine(url or database_url())
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def connect(url: str | None = None, migrate: bool = True, **kwargs: Any) -> sessionmaker[Session]:
    """The usual entry point: migrate (SQLite default: nothing to set up) and return a session factory."""
    url = url or database_url()
    if migrate:
        upgrade(url)
    return session_factory(make_engine(url, **kwargs))
