"""The HTTP service: ``create_app(settings)`` builds the FastAPI app (routes under ``/v1``, ``/healthz``).

On startup it migrates the database (``store.connect``), starts the job workers and re-queues
unfinished plans; on shutdown it stops the workers. ``commitplan serve`` runs it with uvicorn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

import store
from api import problems
from api.deps import IdempotencyStore
from api.jobs import JobRunner
from api.routes import audit, datasets, finops, health, plans, scenarios
from api.settings import Settings

MULTIPART_OVERHEAD = 64 * 1024


class UploadLimit:
    """413 before reading the body when ``Content-Length`` already exceeds the upload limit (the route
    also counts the file's bytes, for chunked uploads without a length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.limit + MULTIPART_OVERHEAD:
                response = problems.problem_response(
                    413, f"the request body is larger than the upload limit of {self.limit:,} bytes",
                    scope["path"], limit=self.limit)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Admission:
    """At most ``limit`` requests inside the app at once; the others wait, first come first served.

    Why: the routes are sync and a request holds its database connection from its first query
    until FastAPI has serialized the response, which takes a second worker thread. With more
    requests inside than worker threads, finished requests held every connection while the threads
    waited for one: 200 concurrent reads stalled until the pool timed out. Below both limits that
    cannot happen, and waiting here costs nothing but time. ``/healthz`` is never held back.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.gate: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.gate is None:  # created inside the server's event loop
            self.gate = asyncio.Semaphore(self.limit)
        async with self.gate:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # one connection per request thread (Starlette runs sync routes on up to 40), on SQLite too:
        # with SQLAlchemy's default 5 + 10, 200 concurrent reads queued into 30 s pool timeouts
        engine_args = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_pool_size}
        app.state.sessions = store.connect(settings.database_url, **engine_args)
        app.state.jobs = JobRunner(app.state.sessions, settings.job_workers)
        app.state.jobs.start(requeue_running=settings.requeue_running)
        try:
            yield
        finally:
            app.state.jobs.stop()
            app.state.sessions.kw["bind"].dispose()

    app = FastAPI(
        title="commitplan", version="1", lifespan=lifespan,
        summary="Cloud commitment plans: datasets, background solves, approval workflow with an audit log.",
        openapi_url="/v1/openapi.json", docs_url="/v1/docs", redoc_url=None,
    )
    app.state.settings = settings
    app.state.idempotency = IdempotencyStore(settings.idempotency_ttl_s)
    problems.install(app)
    v1 = APIRouter(prefix="/v1")
    for module in (datasets, scenarios, plans, audit, finops):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(health.router)
    app.add_middleware(UploadLimit, limit=settings.max_upload_bytes)
    app.add_middleware(Admission, limit=settings.max_concurrent_requests)
    return app
