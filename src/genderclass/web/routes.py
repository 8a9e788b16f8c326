"""The routes: the upload page, the JSON API and the model cards. Each reads its request, asks the
``PredictionService`` (``app.state.service``) and shapes the answer; ``add_routes`` lists them."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, Response

from .errors import ApiError
from .options import FILE_FIELD, parse_predict_request
from .schemas import ErrorResponse, Health, ModelsResponse, PredictResponse, predict_body
from .service import PredictionService
from .settings import WebSettings
from .uploads import parse_form

_ERRORS = {"model": ErrorResponse}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERRORS, "description": "malformed request body"},
    413: {**_ERRORS, "description": "body over the upload limit, or image over the pixel limit"},
    415: {**_ERRORS, "description": "not an image (by content), or not a multipart body"},
    422: {
        **_ERRORS,
        "description": "corrupt image, missing file, bad modality or option; fuse=true with no usable print",
    },
    500: {**_ERRORS, "description": "unexpected server error, or the model gave no finite score"},
}
CARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}},
    404: {**_ERRORS, "description": "no card installed"},
}


def static_dir() -> Path:
    return Path(str(resources.files("genderclass.web") / "static"))


def _service(request: Request) -> PredictionService:
    return request.app.state.service


Service = Annotated[PredictionService, Depends(_service)]


async def index() -> FileResponse:
    return FileResponse(static_dir() / "index.html", media_type="text/html")


async def favicon() -> FileResponse:  # browsers ask for it on pages without an icon link (cards, docs)
    return FileResponse(static_dir() / "favicon.svg", media_type="image/svg+xml")


async def healthz(service: Service) -> dict[str, Any]:
    """Liveness: the process answers and knows which models it serves."""
    return service.health()


async def healthz_head() -> Response:  # monitors that only look at the status
    return Response()


async def list_models_head() -> Response:  # a monitor checking the API answers, without loading models
    return Response(media_type="application/json")


async def list_models(service: Service) -> dict[str, Any]:
    """The models this server offers, with their metadata summaries and the upload limits."""
    return await service.models()


async def predict(request: Request, service: Service) -> dict[str, Any]:
    """Classify every face in each uploaded image (or each whole image: fingerprints, ``detect=false``).

    With one file, an unusable file answers with its own status (413/415/422); with several, the
    answer is 200 and each bad file carries its own ``error``.
    """
    started = time.perf_counter()
    body, content_type = await request.body(), request.headers.get("content-type")
    form = parse_form(body, content_type, FILE_FIELD, max_files=service.settings.max_files)
    answer = await service.predict(parse_predict_request(form, request.query_params))
    return {**answer, "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 2)}


async def model_card(modality: str, service: Service) -> Response:
    """The model card (HTML) of the face or fingerprint model, if one is installed."""
    card = service.card_path(modality)
    if card is None:
        raise ApiError(404, "not_found", f"no model card for {modality[:40]!r} is installed")
    return FileResponse(card, media_type="text/html")


async def model_card_head(modality: str, service: Service) -> Response:  # a link checker's request
    return await model_card(modality, service)


def add_routes(app: FastAPI, settings: WebSettings) -> None:
    """Every route, in the order they are matched."""
    hidden = {"include_in_schema": False}
    app.add_api_route("/", index, methods=["GET", "HEAD"], **hidden)
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], **hidden)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Health, tags=["service"])
    app.add_api_route("/healthz", healthz_head, methods=["HEAD"], **hidden)
    app.add_api_route("/api/v1/models", list_models_head, methods=["HEAD"], **hidden)
    app.add_api_route("/api/v1/models", list_models, methods=["GET"], response_model=ModelsResponse, tags=["api"])
    app.add_api_route(
        "/api/v1/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        tags=["api"],
        openapi_extra={"requestBody": predict_body(settings.max_files)},
        responses=PREDICT_RESPONSES,
    )
    card = "/model-card/{modality}"
    app.add_api_route(
        card, model_card, methods=["GET"], tags=["service"], response_class=Response, responses=CARD_RESPONSES
    )
    app.add_api_route(card, model_card_head, methods=["HEAD"], **hidden)
