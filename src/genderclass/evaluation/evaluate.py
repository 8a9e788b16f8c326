"""``genderclass evaluate``: run a model over a labelled dataset and write metrics.json + report.html."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_BATCH_SIZE, LABELS, write_json
from ..data.readers import Sample, finger_name
from ..imageio import ImageError, load_image
from ..inference.classifier import NON_FINITE_OUTPUT, GenderClassifier
from ..modalities import modality_for
from ..preprocess import Crop, crop_chip
from ..progress import progress
from . import metrics as M
from .calibrated import calibrated_metrics
from .fusion import person_metrics, subjects_with_mixed_labels
from .groups import attribute_groups
from .slices import face_slices

log = logging.getLogger(__name__)

CROP_MODES = ("detect", "chip", "none")
THUMB_SIZE = 64


def _crop(clf: GenderClassifier, path: str, mode: str) -> Crop | None:
    """The crop for one labelled file (None if no face was found)."""
    if mode == "chip":
        return crop_chip(load_image(path), clf.preprocess, clf.detector)[0]
    _, crops = clf.crops(path, detect=(mode == "detect"))
    if not crops:
        return None
    if len(crops) > 1:  # a labelled photo is about its main subject: take the largest face
        crops = sorted(crops, key=lambda c: (c.box[2] - c.box[0]) * (c.box[3] - c.box[1]), reverse=True)
    return crops[0]


def _attributes(sample: Sample, crop: Crop) -> dict[str, Any]:
    """The sample's own attributes, and for a detected face its pose and size bands (the data's
    own attributes win a name clash)."""
    if crop.face is None:
        return dict(sample.attrs)
    return {**face_slices(crop.box, crop.face.landmarks), **sample.attrs}


def _subjects(samples: Sequence[Sample]) -> list[str] | None:
    """Each sample's subject, or None unless every sample names one."""
    subjects = [s.subject for s in samples]
    return subjects if all(subjects) else None


@dataclass
class _Cropped:
    """The crops made for scoring, with their samples and attributes, and the files left out."""

    samples: list[Sample] = field(default_factory=list)
    pixels: list[np.ndarray] = field(default_factory=list)
    attributes: list[dict[str, Any]] = field(default_factory=list)  # per sample: its own, and pose and size slices
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why
    no_face: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        """The cropped samples' labels."""
        return np.array([s.label for s in self.samples])


def _checked_out_dir(samples: Sequence[Sample], out_dir: str | Path) -> Path:
    """``out_dir`` as a path, after refusing what would otherwise fail only after the scoring: a
    subject with two labels, or an ``out_dir`` that is a file."""
    subjects = _subjects(samples)
    if subjects is not None and (bad := subjects_with_mixed_labels(subjects, [s.label for s in samples])):
        raise ValueError(f"subjects with inconsistent labels (checked before scoring): {bad[:5]}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():  # said before the scoring, not after it
        raise ValueError(f"--out {out_dir} is a file: give a folder for the report")
    return out_dir


def _crop_all(clf: GenderClassifier, samples: Sequence[Sample], crop_mode: str) -> _Cropped:
    """Crop every sample, skipping (and counting) unreadable files and those without a face;
    ValueError if none is left."""
    cropped = _Cropped()
    for sample in progress(samples, desc="evaluate"):
        try:
            crop = _crop(clf, sample.path, crop_mode)
        except ImageError as exc:
            cropped.unreadable[sample.path] = str(exc)
            log.warning("skipped %s: %s", sample.path, exc)
            continue
        if crop is None:
            cropped.no_face.append(sample.path)
            continue
        cropped.samples.append(sample)
        cropped.pixels.append(crop.pixels)
        cropped.attributes.append(_attributes(sample, crop))
    if not cropped.samples:
        n_unreadable, n_no_face = len(cropped.unreadable), len(cropped.no_face)
        raise ValueError(
            f"no sample could be evaluated: {n_unreadable} unreadable, {n_no_face} without a face found "
            f"(crop mode {crop_mode!r}; faces that fill the image need --no-detect)"
            if n_no_face
            else f"no sample could be evaluated: all {n_unreadable} unreadable"
        )
    return cropped


def _logits(clf: GenderClassifier, pixels: list[np.ndarray], batch_size: int) -> np.ndarray:
    """The model's logits for the crops; ValueError if any is not a finite number."""
    logits = clf.logits(pixels, batch_size)
    if not np.isfinite(logits).all():
        raise ValueError(f"{NON_FINITE_OUTPUT} ({int((~np.isfinite(logits)).sum())} of {len(logits)} images)")
    return logits


def _subject_metrics(
    clf: GenderClassifier, subjects: list[str], labels: np.ndarray, logits: np.ndarray
) -> dict[str, Any]:
    """Metrics on predictions fused per subject and, for fingerprints, by the number of prints given."""
    plain = {"threshold": clf.threshold, "min_confidence": clf.min_confidence}
    by_prints = modality_for(clf.modality).fuses_per_person
    per_subject, counts = person_metrics(subjects, labels, logits, clf.fusion_temperature_for, plain, by_prints)
    metrics: dict[str, Any] = {"per_subject": per_subject}
    if counts is not None:
        metrics["per_subject_by_prints"] = counts
    return metrics


def _finger_known_metrics(
    clf: GenderClassifier, cropped: _Cropped, logits: np.ndarray, groups: dict[str, list[str | None]] | None
) -> dict[str, Any] | None:
    """Metrics with each finger's offset removed, if the model has per-finger calibration and every
    sample names a finger it knows; None otherwise."""
    fingers = [finger_name(s.attrs.get("finger")) for s in cropped.samples]
    known = clf.finger_known
    if known is None or not set(fingers) <= set(known["offsets"]):
        return None
    corrected = logits - clf.finger_offsets(fingers)
    return calibrated_metrics(
        cropped.labels, corrected, known["temperature"], known["threshold"], known["min_confidence"], groups
    )


def _predictions(cropped: _Cropped, p_cal: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """One record per scored item: its attributes, path, label, predicted label and P(female)."""
    # the item's own attributes first: a data column named like a field below must not replace it
    return [
        {
            **attrs,
            "path": s.path,
            "label": s.label_name,
            "predicted": LABELS[int(p >= threshold)],
            "p_female": round(float(p), 6),
        }
        for s, attrs, p in zip(cropped.samples, cropped.attributes, p_cal.tolist())
    ]


def _scored_metrics(
    clf: GenderClassifier,
    cropped: _Cropped,
    logits: np.ndarray,
    p_cal: np.ndarray,
    group_values: dict[str, list[str | None]],
) -> dict[str, Any]:
    """What metrics.json holds after the model and data: the calibrated metrics (overall and per
    group), what was left out, per subject, with the finger known, and every prediction."""
    labels, groups = cropped.labels, group_values or None
    metrics = calibrated_metrics(labels, logits, clf.temperature, clf.threshold, clf.min_confidence, groups)
    metrics["n_unreadable"] = len(cropped.unreadable)
    metrics["n_no_face"] = len(cropped.no_face)
    subjects = _subjects(cropped.samples)
    if subjects is not None:
        metrics.update(_subject_metrics(clf, subjects, labels, logits))
    finger_known = _finger_known_metrics(clf, cropped, logits, groups)
    if finger_known is not None:
        metrics["finger_known"] = finger_known
    metrics["predictions"] = _predictions(cropped, p_cal, clf.threshold)
    metrics["unreadable"] = cropped.unreadable
    metrics["no_face"] = cropped.no_face
    return metrics


def _write_report(
    out_dir: Path,
    metrics: dict[str, Any],
    cropped: _Cropped,
    p_cal: np.ndarray,
    p_raw: np.ndarray,
    group_values: dict[str, list[str | None]],
    training_metrics_csv: str | Path | None,
) -> None:
    """report.html next to metrics.json, replacing any old one; a warning instead where it cannot
    be written (matplotlib missing)."""
    thumbs = [_thumbnail(c) for c in cropped.pixels]
    from .report import write_report

    report = out_dir / "report.html"
    report.unlink(missing_ok=True)  # an old run's report must not pass for this one's
    try:
        write_report(
            out_dir,
            metrics,
            cropped.labels,
            p_cal,
            p_uncalibrated=p_raw,
            thumbnails=thumbs,
            training_metrics_csv=training_metrics_csv,
            group_of=group_values,
            item_names=[s.path for s in cropped.samples],
        )
    except RuntimeError as exc:
        log.warning("report.html not written: %s", exc)


def evaluate_samples(
    clf: GenderClassifier,
    samples: Sequence[Sample],
    out_dir: str | Path,
    crop_mode: str = "detect",
    batch_size: int = DEFAULT_BATCH_SIZE,
    training_metrics_csv: str | Path | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict every sample, compute metrics (overall, per group, per subject), write the report.
    ``source`` (the data, its format, the split file ...) is recorded as given, in both."""
    out_dir = _checked_out_dir(samples, out_dir)
    cropped = _crop_all(clf, samples, crop_mode)
    out_dir.mkdir(parents=True, exist_ok=True)  # only once there is something to report
    logits = _logits(clf, cropped.pixels, batch_size)
    p_cal = clf.probability(logits)
    group_values = attribute_groups(cropped.attributes)
    metrics: dict[str, Any] = {"model": clf.info(), "data": source or {}, "crop_mode": crop_mode}
    metrics.update(_scored_metrics(clf, cropped, logits, p_cal, group_values))
    write_json(out_dir / "metrics.json", metrics)
    _write_report(out_dir, metrics, cropped, p_cal, M.sigmoid(logits), group_values, training_metrics_csv)
    return metrics


def _thumbnail(crop: np.ndarray) -> np.ndarray:
    import cv2

    small = cv2.resize(crop, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    return small if small.ndim == 3 else small[:, :, None]
