"""The models one web worker serves: resolved at startup, loaded once per process, shared by threads."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MODALITIES
from ..inference.bundled import bundled_models
from ..inference.classifier import GenderClassifier, resolve_model_path
from .detector import server_detector
from .settings import WebSettings

log = logging.getLogger("genderclass.web")


BRIEF_KEYS = ("name", "modality", "path", "labels", "threshold", "min_confidence", "finger_threshold")


class ModelRegistry:
    """Modality -> model file, and the ``GenderClassifier`` loaded from it on first use (per process)."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.paths: dict[str, Path] = {}
        bundled = bundled_models()
        for modality, explicit in (("face", settings.face_model), ("fingerprint", settings.fingerprint_model)):
            if explicit:
                self.paths[modality] = resolve_model_path(explicit)  # FileNotFoundError if missing
            elif modality in bundled:
                self.paths[modality] = bundled[modality]
        if not self.paths:
            raise FileNotFoundError(
                "no model to serve: this installation has no bundled model; pass --model PATH "
                "(a face model .onnx/.json or a run folder) or --fingerprint-model PATH"
            )
        self._models: dict[str, GenderClassifier] = {}
        self._summaries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> list[str]:
        return [m for m in MODALITIES if m in self.paths]

    def is_loaded(self, modality: str) -> bool:
        return modality in self._models

    def get(self, modality: str) -> GenderClassifier:
        """The classifier for ``modality`` (``KeyError`` if none is configured); loads it once."""
        model = self._models.get(modality)
        if model is not None:
            return model
        path = self.paths[modality]
        with self._lock:
            model = self._models.get(modality)
            if model is None:
                model = GenderClassifier.load(path, threads=self.settings.threads or None, device=self.settings.device)
                if model.modality != modality:
                    raise ValueError(f"{path} is a {model.modality} model, but it was given as the {modality} model")
                if model.modality_spec.detects_faces:
                    # Installed before first use, so every thread shares the one locked, leak-free detector.
                    model._detector = server_detector(self.settings.detect_max_side, self.settings.device)
                self._models[modality] = model
                log.info("loaded %s model %s", modality, path)
        return model

    def load_all(self, warm_up: bool = True) -> None:
        """Load every configured model; a dummy prediction initialises lazy native state."""
        for modality in self.available:
            model = self.get(modality)
            if warm_up:
                model.predict(np.full((240, 320, 3), 127, dtype=np.uint8))

    def brief(self, modality: str) -> dict[str, Any]:
        """What a prediction answer says of its model: which one, and where it decides and abstains
        (the full :meth:`summary` is in ``/api/v1/models``)."""
        summary = self.summary(modality)
        return {key: summary[key] for key in BRIEF_KEYS}

    def summary(self, modality: str) -> dict[str, Any]:
        """Public description of a loaded model (``clf.info()`` without the server's file system path)."""
        info = self._summaries.get(modality)
        if info is None:
            info = dict(self.get(modality).info())
            info["path"] = Path(info["path"]).name
            self._summaries[modality] = info
        return info
