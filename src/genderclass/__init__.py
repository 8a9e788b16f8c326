"""genderclass: gender classification from face photos or fingerprints, trained honestly,
served with ONNX Runtime."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["GenderClassifier", "__version__"]


def __getattr__(name: str):
    if name == "GenderClassifier":
        from .inference.classifier import GenderClassifier

        return GenderClassifier
    raise AttributeError(name)
