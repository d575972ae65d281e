"""Every error as RFC 9457 ``application/problem+json``: ``type``, ``title``, ``status``, ``detail``.

Handlers cover our own :class:`ProblemError`, Starlette's HTTP errors (404 no route, 405 wrong
method), request validation (422, with ``errors`` listing each field), an exhausted connection pool (503
with ``Retry-After``) and anything unexpected (500,
logged server-side, never a traceback in the body).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from store import Result

log = logging.getLogger("commitplan.api")

MEDIA_TYPE = "application/problem+json"
SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
         409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "invalid", 500: "internal",
         503: "unavailable"}


def problem_type(status: int) -> str:
    return f"urn:commitplan:problem:{SLUGS.get(status, str(status))}"


def problem_body(status: int, detail: str, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": problem_type(status), "title": HTTPStatus(status).phrase, "status": status,
                            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(status: int, detail: str, instance: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(jsonable_encoder(problem_body(status, detail, instance, **extra)), status_code=status,
                        media_type=MEDIA_TYPE, headers=headers)


class ProblemError(Exception):
    """Raise from a route or dependency: becomes a problem+json response."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers, extra


def from_result(result: Result[Any]) -> ProblemError:
    """A refused store operation (403/404/409/422) as a problem carrying the store's reason."""
    return ProblemError(result.http_status, result.reason or str(result.outcome), outcome=result.outcome.value)


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.detail, request.url.path, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(exc.status_code, detail, request.url.path, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        detail = f"{where}: {first['msg']}" if where else first["msg"]
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(422, detail, request.url.path, errors=errors)

    @app.exception_handler(sqlalchemy.exc.TimeoutError)
    async def _busy(request: Request, exc: sqlalchemy.exc.TimeoutError) -> JSONResponse:
        log.warning("no free database connection for %s %s", request.method, request.url.path)
        return problem_response(503, "the server is busy: no database connection came free in time; retry",
                                request.url.path, {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error: the server logged the details", request.url.path)
