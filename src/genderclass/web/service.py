"""What the web routes call: the models this server offers and the predictions it makes with them.

Models load once per worker process (``ModelRegistry``); images are decoded and classified in worker
threads, at most ``inference_concurrency`` at a time, never on the event loop.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
import numpy as np

from ..config import MODALITIES
from ..imageio import ImageError, load_image
from ..inference.classifier import GenderClassifier, distinct_files
from .errors import ApiError
from .options import PredictRequest, parse_finger, parse_fuse
from .registry import ModelRegistry
from .settings import WebSettings
from .uploads import Upload

log = logging.getLogger("genderclass.web")

_NO_LOGITS = np.zeros(0, dtype=np.float32)


class Outcome(NamedTuple):
    """One upload's answer: its result entry, the error that made it fail (None if classified) and
    its raw logits (empty when it failed), kept for fusing one person's prints."""

    result: dict[str, Any]
    error: ApiError | None
    logits: np.ndarray


class PredictionService:
    """The models of one server (per worker process) and the answers of the JSON API."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.registry = ModelRegistry(settings)  # FileNotFoundError if no model can be served
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """How many images are classified at once; created inside the event loop, on first use."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.inference_concurrency)
        return self._limiter

    async def start(self) -> None:
        """Load and warm up the models now (``preload``), not on the first request."""
        if self.settings.preload:
            await anyio.to_thread.run_sync(self.registry.load_all)
        log.info("serving %s", ", ".join(self.registry.available))

    async def model_for(self, modality: str) -> GenderClassifier:
        registry = self.registry
        if modality not in registry.paths:
            raise ApiError(
                422, "model_unavailable", f"this server has no {modality} model; available: {registry.available}"
            )
        if registry.is_loaded(modality):
            return registry.get(modality)
        return await anyio.to_thread.run_sync(registry.get, modality)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "models": self.registry.available}

    async def models(self) -> dict[str, Any]:
        """The models this server offers, with their metadata summaries, and the upload limits."""
        settings = self.settings
        return {
            "default": self.registry.available[0],
            "models": [await self._model_summary(modality) for modality in self.registry.available],
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "max_files": settings.max_files,
            },
        }

    async def _model_summary(self, modality: str) -> dict[str, Any]:
        try:
            await self.model_for(modality)
            info, loaded = self.registry.summary(modality), True
        except Exception:
            log.exception("cannot load the %s model", modality)
            info, loaded = None, False
        card = self.card_path(modality)
        return {
            "modality": modality,
            "loaded": loaded,
            "info": info,
            "card_url": f"/model-card/{modality}" if card else None,
        }

    def card_path(self, modality: str) -> Path | None:
        """The card of the model served for ``modality``: the HTML card beside its ONNX file. A model
        without one has no card (never the bundled model's, which describes another network)."""
        model = self.registry.paths.get(modality) if modality in MODALITIES else None
        if model is None:
            return None
        candidates = [model.with_name(f"{model.stem}_card.html"), model.with_name(f"{modality}_card.html")]
        return next((p for p in candidates if p.is_file()), None)

    async def predict(self, request: PredictRequest) -> dict[str, Any]:
        """Every upload classified (``results``), and fused into one person with ``fuse``. One unusable
        upload alone is the answer's error; among several, each carries its own."""
        modality, min_confidence = request.modality, request.min_confidence
        clf = await self.model_for(modality)
        finger = parse_finger(request.finger_text, modality, clf)
        fuse = parse_fuse(request.fuse_text, modality)
        classify = partial(
            classify_files, clf, request.files, request.detect, min_confidence, self.settings.max_pixels, finger
        )
        outcomes = await anyio.to_thread.run_sync(classify, limiter=self.limiter)
        if len(outcomes) == 1 and outcomes[0].error is not None:
            raise outcomes[0].error
        if fuse and all(outcome.error is not None for outcome in outcomes):  # no person to answer for
            reasons = "; ".join(f"{o.result['filename']}: {o.error.message[:80]}" for o in outcomes if o.error)
            raise ApiError(422, "no_usable_print", f"none of the {len(outcomes)} prints could be classified: {reasons}")
        return {
            "results": [outcome.result for outcome in outcomes],
            "person": fused_person(clf, request.files, outcomes, min_confidence, finger) if fuse else None,
            "model": self.registry.brief(modality),
        }


def classify_files(
    clf: GenderClassifier,
    uploads: list[Upload],
    detect: bool | None,
    min_confidence: float | None,
    max_pixels: int,
    finger: str | None = None,
) -> list[Outcome]:
    """Decode (with the pixel limit) and classify each upload; runs in a worker thread."""
    return [
        classify_one(clf, upload, f"upload {number} of {len(uploads)}", detect, min_confidence, max_pixels, finger)
        for number, upload in enumerate(uploads, 1)
    ]


def classify_one(
    clf: GenderClassifier,
    upload: Upload,
    place: str,
    detect: bool | None,
    min_confidence: float | None,
    max_pixels: int,
    finger: str | None,
) -> Outcome:
    """One upload's outcome; ``place`` names it in the log (never its file name)."""
    result: dict[str, Any] = {"filename": upload.filename, "faces": [], "error": None, "error_code": None}
    try:
        rgb = decode(upload, max_pixels, place)
        [(prediction, logits)] = clf.predict_batch_with_logits([rgb], detect, min_confidence, fingers=[finger])
    except ApiError as exc:
        return _failed(result, exc)
    except Exception:
        # A bug, not a bad upload: logged, answered 500 alone, and never fatal for the other files.
        log.exception("classifying %s failed", place)
        return _failed(result, ApiError(500, "internal_error", "internal error while classifying this image"))
    result.update(faces=prediction["faces"], error=prediction["error"], image_size=[rgb.shape[1], rgb.shape[0]])
    if prediction["error"]:  # the image decoded, so the model failed on it (e.g. a non-finite score)
        log.error("model error on %s: %s", place, prediction["error"])
        return _failed(result, ApiError(500, "model_error", prediction["error"]))
    return Outcome(result, None, logits)


def _failed(result: dict[str, Any], error: ApiError) -> Outcome:
    result.update(error=error.message, error_code=error.code)
    return Outcome(result, error, _NO_LOGITS)


def decode(upload: Upload, max_pixels: int, place: str) -> np.ndarray:
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


def fused_person(
    clf: GenderClassifier,
    uploads: list[Upload],
    outcomes: list[Outcome],
    min_confidence: float | None,
    finger: str | None,
) -> dict[str, Any] | None:
    """The uploads fused as one person's prints (mean logit, the finger's offset removed when
    given, fusion temperature), each distinct file once (identical bytes count once); None when
    no upload was classified."""
    classified = [i for i, outcome in enumerate(outcomes) if outcome.error is None and len(outcome.logits)]
    if not classified:
        return None
    # the server's log names uploads by their place in the request, never by their (personal) file names
    distinct = distinct_files([uploads[i].data for i in classified], [f"upload {i + 1}" for i in classified])
    kept = [classified[j] for j in distinct]
    logits = [float(outcomes[i].logits[0]) for i in kept]
    filenames = [outcomes[i].result["filename"] for i in kept]
    person = clf.fuse(logits, filenames, min_confidence, [finger] * len(logits))
    return {"filenames": person.pop("paths"), **person}
