"""Fingerprint fusion and per-finger calibration, beside the per-print calibration of a model.

A person's several prints are fused into one answer: the mean logit, calibrated with temperatures
fitted at export on validation subjects for each number of prints. A print whose finger is named
has that finger's offset removed and a calibration fitted without the offsets. ``GenderClassifier``
delegates its fusion and finger methods here; each function reads the classifier's current
settings (``temperature``, ``fusion_temperature``, ``fusion_temperatures``, ``finger_known``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .. import calibration as cal
from ..modalities.fingerprint import finger_name

if TYPE_CHECKING:
    from ..imageio import ImageSource


class GenderClassifier(Protocol):
    """What fusion reads of a :class:`~genderclass.inference.classifier.GenderClassifier` (a protocol,
    so that this module, which the classifier delegates to, does not import it back)."""

    path: Path
    metadata: dict[str, Any]
    temperature: float
    fusion_temperature: float
    fusion_temperatures: list[float]
    finger_known: dict[str, Any] | None

    def probability(
        self, logits: np.ndarray, fused: bool = False, finger_known: bool = False, n_fused: Any = None
    ) -> np.ndarray: ...

    def decide(
        self, p_female: float, min_confidence: float | None = None, finger_known: bool = False
    ) -> dict[str, Any]: ...


def fusion_settings(metadata: dict[str, Any]) -> tuple[float, list[float], dict[str, Any] | None]:
    """A model's fusion temperature, fusion temperatures by print count and per-finger calibration,
    from its migrated metadata (``inference/metadata.py`` fills what older models lack)."""
    fusion_temperatures = [float(t) for t in metadata["fusion_temperatures"]]
    finger_known = metadata["finger_known"]
    known = finger_known if isinstance(finger_known, dict) and finger_known.get("offsets") else None
    fitted = metadata["fusion_temperature"]  # None: not fitted, a mean has the per-print calibration
    return float(metadata["temperature"] if fitted is None else fitted), fusion_temperatures, known


def finger_calibration(model: GenderClassifier) -> dict[str, Any]:
    """The model's per-finger calibration (offsets, temperature, threshold, min_confidence);
    ValueError for a model without one."""
    if model.finger_known is None:
        raise ValueError(
            f"{model.path.name} has no per-finger calibration (only fingerprint models exported from data "
            "that names the finger have one)"
        )
    return model.finger_known


def fusion_temperature_for(model: GenderClassifier, n_fused: Any = None, finger_known: bool = False) -> Any:
    """See :meth:`GenderClassifier.fusion_temperature_for`."""
    if n_fused is None:
        return model.fusion_temperature
    calibration = finger_calibration(model) if finger_known else {}
    table = calibration.get("fusion_temperatures") or model.fusion_temperatures
    single = float(calibration["temperature"]) if finger_known else model.temperature
    # nothing fitted on subjects (data without them): a named finger's mean keeps the offset-free temperature
    fitted_on_subjects = bool(table) or model.metadata["fusion_temperature"] is not None
    default = model.fusion_temperature if fitted_on_subjects or not finger_known else single
    return cal.temperature_by_count(n_fused, table, default, single=single)


def finger_offsets(model: GenderClassifier, fingers: Sequence[str | None]) -> np.ndarray:
    """See :meth:`GenderClassifier.finger_offsets`."""
    names = [finger_name(f) for f in fingers]
    if not any(names):
        return np.zeros(len(names))
    offsets = finger_calibration(model)["offsets"]
    unknown = sorted({f for f in names if f and f not in offsets})
    if unknown:
        raise ValueError(f"unknown finger {', '.join(unknown)}; this model knows {', '.join(offsets)}")
    return np.array([float(offsets[f]) if f else 0.0 for f in names])


def fingers_of(
    model: GenderClassifier, images: Sequence[ImageSource], fingers: Sequence[str | None] | None
) -> tuple[list[str | None], np.ndarray]:
    """Each image's finger name (None where not given) and offset, checked before any work."""
    names = [finger_name(f) for f in fingers] if fingers is not None else [None] * len(images)
    if len(names) != len(images):
        raise ValueError(f"{len(names)} fingers for {len(images)} images")
    return names, finger_offsets(model, names)


def fused_answer(
    model: GenderClassifier,
    logits: np.ndarray,
    sources: Sequence[str | None],
    min_confidence: float | None,
    fingers: Sequence[str | None] | None,
) -> dict[str, Any]:
    """One person's answer from checked, finite logits of their images (see
    :meth:`GenderClassifier.fuse`)."""
    if fingers is not None:
        logits = logits - finger_offsets(model, fingers)
    # every finger named: the calibration fitted without the offsets, as for one print with --finger
    known = fingers is not None and all(finger_name(f) for f in fingers) and model.finger_known is not None
    mean = np.array([logits.mean()])
    p = float(model.probability(mean, fused=True, finger_known=known, n_fused=len(logits))[0])
    return {"paths": list(sources), "n": len(logits), **model.decide(p, min_confidence, finger_known=known)}
