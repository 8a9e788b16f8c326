"""FastAPI app: the upload page, the JSON API and the model cards, over ``GenderClassifier``.

``create_app(settings)`` builds one app; ``app_from_env()`` is the factory uvicorn workers import
(``uvicorn --factory genderclass.web.app:app_from_env``), with settings in ``GENDERCLASS_WEB_*`` variables.
Models load once per worker process; inference runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..config import MODALITIES
from ..imageio import ImageError, load_image
from ..inference.classifier import GenderClassifier, distinct_files
from .errors import ApiError, install_error_handlers
from .middleware import install_middleware
from .options import FILE_FIELD, parse_finger, parse_fuse, parse_predict_request
from .registry import ModelRegistry
from .schemas import ErrorResponse, Health, ModelsResponse, PredictForm, PredictResponse, multipart_body
from .settings import WebSettings
from .uploads import Upload, parse_form

log = logging.getLogger("genderclass.web")

_ERRORS = {"model": ErrorResponse}

PREDICT_BODY = multipart_body(PredictForm)


def static_dir() -> Path:
    return Path(str(resources.files("genderclass.web") / "static"))


def _classify_files(
    clf: GenderClassifier,
    uploads: list[Upload],
    detect: bool | None,
    min_confidence: float | None,
    max_pixels: int,
    finger: str | None = None,
) -> list[tuple[dict[str, Any], ApiError | None, np.ndarray]]:
    """Decode (with the pixel limit) and classify each upload; runs in a worker thread. Each
    outcome also carries the upload's raw logits (none when it failed), for fusion."""
    out: list[tuple[dict[str, Any], ApiError | None, np.ndarray]] = []
    no_logits = np.zeros(0, dtype=np.float32)
    for number, upload in enumerate(uploads, 1):
        result: dict[str, Any] = {"filename": upload.filename, "faces": [], "error": None, "error_code": None}
        try:
            rgb = _decode(upload, max_pixels, f"upload {number} of {len(uploads)}")
            [(prediction, logits)] = clf.predict_batch_with_logits([rgb], detect, min_confidence, fingers=[finger])
        except ApiError as exc:
            result.update(error=exc.message, error_code=exc.code)
            out.append((result, exc, no_logits))
            continue
        except Exception:
            # A bug, not a bad upload: logged, answered 500 alone, and never fatal for the other files.
            log.exception("classifying upload %d of %d failed", number, len(uploads))
            exc = ApiError(500, "internal_error", "internal error while classifying this image")
            result.update(error=exc.message, error_code=exc.code)
            out.append((result, exc, no_logits))
            continue
        result.update(faces=prediction["faces"], error=prediction["error"], image_size=[rgb.shape[1], rgb.shape[0]])
        if prediction["error"]:  # the image decoded, so the model failed on it (e.g. a non-finite score)
            log.error("model error on upload %d of %d: %s", number, len(uploads), prediction["error"])
            exc = ApiError(500, "model_error", prediction["error"])
            result.update(error_code=exc.code)
            out.append((result, exc, no_logits))
            continue
        out.append((result, None, logits))
    return out


def _person(
    clf: GenderClassifier,
    uploads: list[Upload],
    outcomes: list[tuple[dict[str, Any], ApiError | None, np.ndarray]],
    min_confidence: float | None,
    finger: str | None,
) -> dict[str, Any] | None:
    """The uploads fused as one person's prints (mean logit, the finger's offset removed when
    given, fusion temperature), each distinct file once (identical bytes count once); None when
    no upload was classified."""
    classified = [i for i, (_, error, upload_logits) in enumerate(outcomes) if error is None and len(upload_logits)]
    if not classified:
        return None
    # the server's log names uploads by their place in the request, never by their (personal) file names
    distinct = distinct_files([uploads[i].data for i in classified], [f"upload {i + 1}" for i in classified])
    kept = [classified[j] for j in distinct]
    logits = [float(outcomes[i][2][0]) for i in kept]
    filenames = [outcomes[i][0]["filename"] for i in kept]
    person = clf.fuse(logits, filenames, min_confidence, [finger] * len(logits))
    return {"filenames": person.pop("paths"), **person}


def _decode(upload: Upload, max_pixels: int, place: str) -> np.ndarray:
    """The upload's pixels; ``place`` names it in the log (never its file name)."""
    try:
        return load_image(upload.data, max_pixels=max_pixels)
    except ImageError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    except Exception as exc:
        # Pillow plugins raise more than load_image catches (e.g. IndexError on some broken GIFs):
        # whatever the decoder chokes on is a corrupt upload, not a server error.
        log.warning("decoder error on %s: %s: %s", place, type(exc).__name__, exc)
        raise ApiError(422, "corrupt_image", f"image is truncated or corrupt: {type(exc).__name__}") from None


def _card_path(registry: ModelRegistry, modality: str) -> Path | None:
    """The card of the model served for ``modality``: the HTML card beside its ONNX file. A model
    without one has no card (never the bundled model's, which describes another network)."""
    model = registry.paths.get(modality)
    if model is None:
        return None
    candidates = [model.with_name(f"{model.stem}_card.html"), model.with_name(f"{modality}_card.html")]
    return next((p for p in candidates if p.is_file()), None)


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """Build the web app. Raises ``FileNotFoundError`` if no model can be served."""
    settings = settings or WebSettings()
    registry = ModelRegistry(settings)
    limiter_box: dict[str, anyio.CapacityLimiter] = {}

    def limiter() -> anyio.CapacityLimiter:  # created inside the event loop, on first use
        if "limiter" not in limiter_box:
            limiter_box["limiter"] = anyio.CapacityLimiter(settings.inference_concurrency)
        return limiter_box["limiter"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.preload:
            await anyio.to_thread.run_sync(registry.load_all)
        log.info("serving %s", ", ".join(registry.available))
        yield

    app = FastAPIOffline(  # /docs and /redoc with their scripts served locally, never from a CDN
        title="genderclass",
        version=__version__,
        description=(
            "Classifies gender as labelled in public datasets (binary male/female labels, a simplification "
            "that does not capture gender identity) from face photos or fingerprints. Not for surveillance "
            "or decisions about people."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    install_error_handlers(app)
    install_middleware(app, settings)
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    async def model_for(modality: str) -> GenderClassifier:
        if modality not in registry.paths:
            raise ApiError(
                422, "model_unavailable", f"this server has no {modality} model; available: {registry.available}"
            )
        if registry.is_loaded(modality):
            return registry.get(modality)
        return await anyio.to_thread.run_sync(registry.get, modality)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static_dir() / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:  # browsers ask for it on pages without an icon link (cards, docs)
        return FileResponse(static_dir() / "favicon.svg", media_type="image/svg+xml")

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers and knows which models it serves."""
        return {"status": "ok", "models": registry.available}

    @app.head("/healthz", include_in_schema=False)  # monitors that only look at the status
    async def healthz_head() -> Response:
        return Response()

    @app.head("/api/v1/models", include_in_schema=False)  # a monitor checking the API answers, without loading models
    async def list_models_head() -> Response:
        return Response(media_type="application/json")

    @app.get("/api/v1/models", response_model=ModelsResponse, tags=["api"])
    async def list_models() -> dict[str, Any]:
        """The models this server offers, with their metadata summaries and the upload limits."""
        models = []
        for modality in registry.available:
            try:
                await model_for(modality)
                info, loaded = registry.summary(modality), True
            except Exception:
                log.exception("cannot load the %s model", modality)
                info, loaded = None, False
            card = _card_path(registry, modality)
            models.append(
                {
                    "modality": modality,
                    "loaded": loaded,
                    "info": info,
                    "card_url": f"/model-card/{modality}" if card else None,
                }
            )
        return {
            "default": registry.available[0],
            "models": models,
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "max_files": settings.max_files,
            },
        }

    @app.post(
        "/api/v1/predict",
        response_model=PredictResponse,
        tags=["api"],
        openapi_extra={"requestBody": PREDICT_BODY},
        responses={
            400: {**_ERRORS, "description": "malformed request body"},
            413: {**_ERRORS, "description": "body over the upload limit, or image over the pixel limit"},
            415: {**_ERRORS, "description": "not an image (by content), or not a multipart body"},
            422: {
                **_ERRORS,
                "description": "corrupt image, missing file, bad modality or option; fuse=true with no usable print",
            },
            500: {**_ERRORS, "description": "unexpected server error, or the model gave no finite score"},
        },
    )
    async def predict(request: Request) -> dict[str, Any]:
        """Classify every face in each uploaded image (or each whole image: fingerprints, ``detect=false``).

        With one file, an unusable file answers with its own status (413/415/422); with several, the
        answer is 200 and each bad file carries its own ``error``.
        """
        started = time.perf_counter()
        form = parse_form(
            await request.body(), request.headers.get("content-type"), FILE_FIELD, max_files=settings.max_files
        )
        options = parse_predict_request(form, request.query_params)
        modality, detect, min_confidence = options.modality, options.detect, options.min_confidence
        clf = await model_for(modality)
        finger = parse_finger(options.finger_text, modality, clf)
        fuse = parse_fuse(options.fuse_text, modality)
        outcomes = await anyio.to_thread.run_sync(
            partial(_classify_files, clf, form.files, detect, min_confidence, settings.max_pixels, finger),
            limiter=limiter(),
        )
        if len(outcomes) == 1 and outcomes[0][1] is not None:
            raise outcomes[0][1]
        if fuse and all(error is not None for _, error, _ in outcomes):  # no person to answer for
            reasons = "; ".join(f"{result['filename']}: {error.message[:80]}" for result, error, _ in outcomes)
            raise ApiError(422, "no_usable_print", f"none of the {len(outcomes)} prints could be classified: {reasons}")
        return {
            "results": [result for result, _, _ in outcomes],
            "person": _person(clf, form.files, outcomes, min_confidence, finger) if fuse else None,
            "model": registry.brief(modality),
            "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 2),
        }

    @app.get(
        "/model-card/{modality}",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/html": {}}}, 404: {**_ERRORS, "description": "no card installed"}},
    )
    async def model_card(modality: str) -> Response:
        """The model card (HTML) of the face or fingerprint model, if one is installed."""
        card = _card_path(registry, modality) if modality in MODALITIES else None
        if card is None:
            raise ApiError(404, "not_found", f"no model card for {modality[:40]!r} is installed")
        return FileResponse(card, media_type="text/html")

    @app.head("/model-card/{modality}", include_in_schema=False)  # a link checker's request
    async def model_card_head(modality: str) -> Response:
        return await model_card(modality)

    # The other pages (/docs, /redoc) answer HEAD as GET too, as every HTTP server must (RFC 9110).
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.include_in_schema and route.methods == {"GET"}:
            route.methods.add("HEAD")

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from ``GENDERCLASS_WEB_*`` environment variables."""
    return create_app(WebSettings.from_env())
