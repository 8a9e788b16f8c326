"""FastAPI app: the upload page, the JSON API and the model cards, over ``GenderClassifier``.

``create_app(settings)`` builds one app; ``app_from_env()`` is the factory uvicorn workers import
(``uvicorn --factory genderclass.web.app:app_from_env``), with settings in ``GENDERCLASS_WEB_*`` variables.
The routes are in ``routes``, what they call in ``service``, the middleware in ``middleware`` and the
JSON errors in ``errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from .errors import install_error_handlers
from .middleware import install_middleware
from .routes import add_routes, static_dir
from .service import PredictionService
from .settings import WebSettings

DESCRIPTION = (
    "Classifies gender as labelled in public datasets (binary male/female labels, a simplification "
    "that does not capture gender identity) from face photos or fingerprints. Not for surveillance "
    "or decisions about people."
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await app.state.service.start()
    yield


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """Build the web app. Raises ``FileNotFoundError`` if no model can be served."""
    settings = settings or WebSettings()
    service = PredictionService(settings)
    # /docs and /redoc with their scripts served locally, never from a CDN
    app = FastAPIOffline(title="genderclass", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.service = service
    app.state.registry = service.registry
    install_error_handlers(app)
    install_middleware(app, settings)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    add_routes(app, settings)
    answer_head_as_get(app)
    return app


def answer_head_as_get(app: FastAPI) -> None:
    """The pages outside the API (/docs, /redoc, the icon) answer HEAD as GET too, as every HTTP
    server must (RFC 9110)."""
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema and route.methods == {"GET"}:
            route.methods.add("HEAD")


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from ``GENDERCLASS_WEB_*`` environment variables."""
    return create_app(WebSettings.from_env())
