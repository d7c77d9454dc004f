"""The dashboard's FastAPI app: the API, the pages and their files, behind the Guard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pursuit.dashboard import _api, _pages
from pursuit.dashboard._security import LOOPBACK, MIN_TOKEN, Guard
from pursuit.dashboard._views import GoalViews, dumps
from pursuit.exceptions import PursuitError, StoreError
from pursuit.store import open_store, resolve_url

log = logging.getLogger("pursuit.dashboard")


def create_app(store_url: str | None, *, token: str | None = None,
               allowed_hosts: Iterable[str] = LOOPBACK) -> FastAPI:
    """The dashboard over the store at ``store_url`` (default: $PURSUIT_STORE, else
    ./pursuit.db), opened for reading; it never creates a store.

    With ``token``, every route but ``/api/health`` needs it (see
    ``pursuit.dashboard._security``). ``allowed_hosts`` are the names the Host header may
    give: the server's own (loopback by default), never a stranger's name for it."""
    if token is not None and len(token) < MIN_TOKEN:
        raise PursuitError(f"a token must be at least {MIN_TOKEN} characters (got "
                           f"{len(token)}); `--token generate` makes a random one")
    store = open_store(resolve_url(store_url), create=False)
    views = GoalViews(store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="Pursuit dashboard", version=_version(), lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # their pages load scripts from a CDN
                  description="Goals, leaderboards, trials and learning curves of a "
                              "Pursuit store, read-only. With a token, send "
                              "`Authorization: Bearer <token>`.")
    app.state.views = views
    app.include_router(_api.router())
    app.include_router(_pages.router(token))
    for path, (body, kind, cache) in _pages.static_files().items():
        _serve_file(app, path, body, kind, cache)
    _handle_errors(app)
    app.add_middleware(Guard, token=token, allowed_hosts=tuple(allowed_hosts))
    return app


def _serve_file(app: FastAPI, path: str, body: bytes, kind: str, cache: str) -> None:
    headers = {"cache-control": cache}

    @app.get(path, include_in_schema=False)
    def served() -> Response:
        return Response(body, media_type=kind, headers=headers)


def _handle_errors(app: FastAPI) -> None:
    """Errors as JSON with a ``detail``: a bad parameter 422, a store that cannot be
    read 503. Anything else is a bug, logged in full and answered with a plain 500."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                     "type": e.get("type", "")} for e in error.errors()]
        return Response(dumps({"detail": problems}), status_code=422,
                        media_type="application/json")

    @app.exception_handler(StoreError)
    async def unreadable(_: Request, error: StoreError) -> Response:
        log.warning("reading the store failed: %s", error)
        return JSONResponse({"detail": "the store could not be read; see the server's log"},
                            status_code=503)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return JSONResponse({"detail": "internal error; see the server's log"},
                            status_code=500)


def _version() -> str:
    from pursuit import __version__

    return __version__

