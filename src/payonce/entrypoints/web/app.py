"""The ASGI application: API routes, pages, problem+json errors and, in development, the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import payonce
from payonce.bootstrap import Container
from payonce.entrypoints.background import background
from payonce.entrypoints.web import (
    admin,
    events,
    health,
    notify,
    orders,
    pages,
    payments,
    problems,
)
from payonce.entrypoints.web.request_context import RequestContext


def create_app(
    container: Container, *, run_background: bool = True, run_relay: bool = True
) -> FastAPI:
    """The app over an already built container. ``run_background`` runs the background loops
    inside (tests drive them by hand instead); ``run_relay=False`` leaves the outbox relay and
    the trade polls to `payonce worker` processes."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not run_background:
            yield
            return
        async with background(
            container, interval_s=container.settings.background_interval_s, relay=run_relay
        ):
            yield

    app = FastAPI(
        title="payonce",
        version=payonce.__version__,
        summary="Every order paid exactly once; no payment ever lost.",
        lifespan=lifespan,
    )
    app.state.container = container
    problems.install(app)
    app.add_middleware(RequestContext)  # added last: outermost, so every answer is named
    for module in (orders, payments, notify, events, health, admin, pages):
        app.include_router(module.router)
    app.include_router(admin.operations)
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
    if container.sandbox is not None:
        app.mount("/sandbox", container.sandbox.app, name="sandbox")
    return app


def create_operations_app(container: Container) -> FastAPI:
    """What a worker serves: /metrics (admin key), /livez and /readyz, and nothing else."""
    app = FastAPI(title="payonce worker", version=payonce.__version__, docs_url=None)
    app.state.container = container
    problems.install(app)
    app.include_router(health.router)
    app.include_router(admin.operations)
    app.add_middleware(RequestContext)
    return app
