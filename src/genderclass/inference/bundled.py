"""Bundled default models, shipped inside the package (``genderclass/models``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..config import MODALITIES


def models_dir() -> Path:
    return Path(str(resources.files("genderclass") / "models"))


def bundled_model_path(modality: str = "face") -> Path:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    path = models_dir() / f"{modality}.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"no bundled {modality} model in this installation ({path})")
    return path


def bundled_models() -> dict[str, Path]:
    """Modality -> ONNX path for each bundled model present."""
    return {m: models_dir() / f"{m}.onnx" for m in MODALITIES if (models_dir() / f"{m}.onnx").is_file()}
