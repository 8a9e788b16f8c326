"""Web app settings: one dataclass, passed to ``create_app`` or, for multi-worker uvicorn, through
environment variables (each worker process rebuilds the same settings with ``WebSettings.from_env``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import DETECT_MAX_SIDE, MAX_PIXELS, MAX_UPLOAD_BYTES
from ..runtime import DEVICES

ENV_PREFIX = "GENDERCLASS_WEB_"


@dataclass(frozen=True)
class WebSettings:
    """Everything the app needs; defaults serve the bundled models with the documented limits."""

    face_model: str | None = None  # .onnx/.json or run folder; None = bundled face model (if present)
    fingerprint_model: str | None = None  # None = bundled fingerprint model (if present)
    max_upload_bytes: int = MAX_UPLOAD_BYTES  # whole request body
    max_pixels: int = MAX_PIXELS  # declared width x height, checked before decoding
    max_files: int = 20  # files per request
    threads: int = 1  # ONNX Runtime threads per image being classified (0 = min(2, cores)); see concurrency
    inference_concurrency: int = 2  # images classified at the same time per worker process (one per core)
    preload: bool = True  # load and warm up the models at startup (else on first use)
    detect_max_side: int = DETECT_MAX_SIDE  # photos are downscaled to this long side for face detection
    loopback_only: bool = False  # answer only requests addressed to a loopback name (serve on 127.0.0.1)
    device: str = "cpu"  # where the networks run: cpu, or cuda (needs onnxruntime-gpu)

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_files", "inference_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 64 <= self.detect_max_side <= 960:
            raise ValueError(f"detect_max_side must be from 64 to 960, got {self.detect_max_side}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")

    def to_env(self) -> dict[str, str]:
        """Environment variables from which ``from_env`` rebuilds these settings."""
        env = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            env[ENV_PREFIX + field.name.upper()] = "" if value is None else str(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is None:
                continue
            if field.name in ("face_model", "fingerprint_model"):
                values[field.name] = raw or None
            elif field.name == "device":
                values[field.name] = raw
            elif field.name in ("preload", "loopback_only"):
                values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[field.name] = int(raw)
        return cls(**values)
