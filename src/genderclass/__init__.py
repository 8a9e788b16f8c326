"""genderclass: gender classification from face photos or fingerprints, trained honestly,
served with ONNX Runtime."""

from __future__ import annotations

import os

# ONNX Runtime (1.29+, outside Windows) logs a ProcessInfo telemetry event as soon as it is imported,
# keeps a device id and an event queue under the user's cache folder and a session file in the temp
# folder, and uploads them. The variable is its full opt-out, read only when it is first imported, so
# it is set here, before any module of this package imports it (ORT_DISABLE_TELEMETRY=0 opts back in).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
__all__ = ["GenderClassifier", "predict_dataset", "__version__"]


def __getattr__(name: str):
    if name == "GenderClassifier":
        from .inference.classifier import GenderClassifier

        return GenderClassifier
    if name == "predict_dataset":  # needs the 'ray' extra
        from .inference.ray_engine import predict_dataset

        return predict_dataset
    raise AttributeError(name)
