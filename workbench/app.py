"""The workbench application: ``create_app(config)`` builds the FastAPI app over one store.

One store is opened for the app's lifetime (the embedded store admits one process) and every
request uses it under one lock (:class:`Context`), so the API's reads and writes are serialised
like the CLI's. Each page's endpoints live in a router of :mod:`workbench.api`; every endpoint
validates its input with the same checks the CLI uses and answers a bad request with status 400
and ``{"error": "<one line>"}`` (the CLI's own message for a :class:`~graph.errors.MokgError`;
FastAPI's validation errors, 422 by default, are 400 too), a node, query or run that does not
exist (:class:`NotFound`) with 404, a Bolt server that cannot be reached with 503. No Cypher
text comes from the browser: only named queries and their parameters. Writes go through the
store's run API only.

With ``token`` set, every request must carry ``Authorization: Bearer <token>`` (the pages read the
token once from the ``?token=`` of the first URL and keep it in the browser's session storage).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from graph.errors import MokgError, StoreUnavailable, one_line

if TYPE_CHECKING:
    from graph.store import GraphStore, StoreConfig

ROUTERS = ("explore", "queries", "review", "audiences", "runs")


class ErrorBody(BaseModel):
    """The body of every refused request."""

    error: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input (one line saying what to do)"},
    404: {"model": ErrorBody, "description": "No such node, query or run"},
}


@dataclass(frozen=True)
class WorkbenchConfig:
    """Args:
    store: the store to open (as every command chooses it).
    token: the bearer token every request must carry (None: no check; only on 127.0.0.1).
    feedback: the JSON-lines feedback file review decisions go to (`mokg feedback import` reads it).
    exports: the folder audience exports are written to.
    audit_log: the audience exports' audit log (as `mokg audience export`).
    world: a world directory, when the store was ingested from one (hidden truth is never served).
    conversions, windows: the advertiser's conversion log and campaign schedule (Parquet) that
        the lookalike and density audiences learn from (`mokg audience score` options of the
        same names); None: those methods are refused with their own message.
    """

    store: StoreConfig
    token: str | None = None
    feedback: Path = Path("mokg-data/workbench/feedback.jsonl")
    exports: Path = Path("mokg-data/workbench/exports")
    audit_log: Path = Path("mokg-data/audit/audience_exports.jsonl")
    world: Path | None = None
    conversions: Path | None = None
    windows: Path | None = None


@dataclass
class Context:
    """What every endpoint gets: the config and the store, used under :meth:`use`."""

    config: WorkbenchConfig
    store: GraphStore
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def use(self) -> Iterator[GraphStore]:
        """The store, for one request at a time."""
        with self.lock:
            yield self.store


def context(request: Request) -> Context:
    """FastAPI dependency: the app's :class:`Context`."""
    ctx: Context = request.app.state.ctx
    return ctx


def create_app(config: WorkbenchConfig, store: GraphStore | None = None) -> FastAPI:
    """The app over ``store`` (default: opened from ``config.store`` at start-up, closed at shutdown)."""
    import importlib

    from graph.store import open_store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store if store is not None else open_store(config.store)
        app.state.ctx = Context(config, opened)
        try:
            yield
        finally:
            if store is None:
                opened.close()

    app = FastAPI(
        title="mokg workbench",
        description="Explore the MoKG, review mined facts, build audiences, manage runs.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the workbench works offline;
        redoc_url=None,  # the spec itself is at /openapi.json
    )
    if config.token:
        app.middleware("http")(_bearer(config.token))
    app.add_exception_handler(MokgError, _bad_request)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    for name in ROUTERS:
        module = importlib.import_module(f"workbench.api.{name}")
        app.include_router(module.router, prefix="/api", responses=ERROR_RESPONSES)
    pages = importlib.import_module("workbench.pages")
    pages.mount(app)
    return app


def _bearer(token: str) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get("authorization", "")
        is_page = request.method == "GET" and not request.url.path.startswith("/api")
        ok = hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
        if not ok and is_page:  # a page load may carry the token once in its URL
            ok = hmac.compare_digest(request.query_params.get("token", "").encode(), token.encode())
        if not ok:
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
        return await call_next(request)

    return check


async def _bad_request(_request: Request, exc: Exception) -> Response:
    """A MokgError (the CLI's one-line messages) → 400; a server that cannot be reached → 503."""
    status = 503 if isinstance(exc, StoreUnavailable) else 400
    return JSONResponse(error_body(one_line(exc) or type(exc).__name__), status_code=status)


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    """FastAPI's validation errors (422 by default) as 400 with the first problem in one line."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    if not errors:
        return JSONResponse(error_body("invalid request"), status_code=400)
    first = errors[0]
    where = " ".join(str(x) for x in first.get("loc", ()) if x != "body") or "request"
    return JSONResponse(error_body(one_line(f"{where}: {first.get('msg', 'invalid')}")), status_code=400)


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's errors (404, 405, ...) in the same {"error": ...} shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    return JSONResponse(error_body(one_line(detail)), status_code=status)


class NotFound(MokgError):
    """A node, query or run that does not exist (answered with 404)."""


async def _not_found(_request: Request, exc: Exception) -> Response:
    return JSONResponse(error_body(one_line(exc)), status_code=404)


def error_body(message: str) -> dict[str, Any]:
    """The body of every refused request."""
    return {"error": message}
