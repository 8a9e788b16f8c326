"""``genderclass evaluate``: run a model over a labelled dataset and write metrics.json + report.html."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_BATCH_SIZE, LABELS, write_json
from ..data.readers import Sample, finger_name
from ..imageio import ImageError, load_image
from ..inference.classifier import NON_FINITE_OUTPUT, GenderClassifier
from ..preprocess import Crop, crop_chip
from ..progress import progress
from . import metrics as M
from .calibrated import calibrated_metrics
from .fusion import by_print_count, per_subject_metrics, subjects_with_mixed_labels
from .groups import attribute_groups
from .slices import face_slices

log = logging.getLogger(__name__)

CROP_MODES = ("detect", "chip", "none")
THUMB_SIZE = 64


def default_crop_mode(fmt: str, modality: str) -> str:
    if modality != "face":
        return "none"
    return "chip" if fmt == "utkface" else "detect"


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
    subjects = _subjects(samples)
    if subjects is not None and (bad := subjects_with_mixed_labels(subjects, [s.label for s in samples])):
        raise ValueError(f"subjects with inconsistent labels (checked before scoring): {bad[:5]}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():  # said before the scoring, not after it
        raise ValueError(f"--out {out_dir} is a file: give a folder for the report")
    kept: list[Sample] = []
    crops: list[np.ndarray] = []
    attributes: list[dict[str, Any]] = []  # per kept sample: its own, and pose and size slices
    errors: dict[str, str] = {}
    no_face: list[str] = []
    for sample in progress(samples, desc="evaluate"):
        try:
            crop = _crop(clf, sample.path, crop_mode)
        except ImageError as exc:
            errors[sample.path] = str(exc)
            log.warning("skipped %s: %s", sample.path, exc)
            continue
        if crop is None:
            no_face.append(sample.path)
            continue
        kept.append(sample)
        crops.append(crop.pixels)
        attributes.append(_attributes(sample, crop))
    if not kept:
        raise ValueError(
            f"no sample could be evaluated: {len(errors)} unreadable, {len(no_face)} without a face found "
            f"(crop mode {crop_mode!r}; faces that fill the image need --no-detect)"
            if no_face
            else f"no sample could be evaluated: all {len(errors)} unreadable"
        )
    out_dir.mkdir(parents=True, exist_ok=True)  # only once there is something to report
    logits = clf.logits(crops, batch_size)
    if not np.isfinite(logits).all():
        raise ValueError(f"{NON_FINITE_OUTPUT} ({int((~np.isfinite(logits)).sum())} of {len(logits)} images)")
    labels = np.array([s.label for s in kept])
    p_cal = clf.probability(logits)
    p_raw = M.sigmoid(logits)
    threshold = clf.threshold
    group_values = attribute_groups(attributes)

    metrics: dict[str, Any] = {"model": clf.info(), "data": source or {}, "crop_mode": crop_mode}
    metrics.update(
        calibrated_metrics(labels, logits, clf.temperature, threshold, clf.min_confidence, group_values or None)
    )
    metrics["n_unreadable"] = len(errors)
    metrics["n_no_face"] = len(no_face)
    subjects = _subjects(kept)
    if subjects is not None:
        plain = {"threshold": threshold, "min_confidence": clf.min_confidence}
        metrics["per_subject"] = per_subject_metrics(subjects, labels, logits, clf.fusion_temperature_for, plain)
        if clf.modality == "fingerprint":
            metrics["per_subject_by_prints"] = by_print_count(
                subjects, labels, logits, clf.fusion_temperature_for, threshold
            )
    fingers = [finger_name(s.attrs.get("finger")) for s in kept]
    if clf.finger_known is not None and set(fingers) <= set(clf.finger_known["offsets"]):
        known = clf.finger_known  # every finger named: also measured with its offset removed
        corrected = logits - clf.finger_offsets(fingers)
        metrics["finger_known"] = calibrated_metrics(
            labels, corrected, known["temperature"], known["threshold"], known["min_confidence"], group_values or None
        )
    # the item's own attributes first: a data column named like a field below must not replace it
    metrics["predictions"] = [
        {
            **attrs,
            "path": s.path,
            "label": s.label_name,
            "predicted": LABELS[int(p >= threshold)],
            "p_female": round(float(p), 6),
        }
        for s, attrs, p in zip(kept, attributes, p_cal.tolist())
    ]
    metrics["unreadable"] = errors
    metrics["no_face"] = no_face
    write_json(out_dir / "metrics.json", metrics)

    thumbs = [_thumbnail(c) for c in crops]
    from .report import write_report

    report = out_dir / "report.html"
    report.unlink(missing_ok=True)  # an old run's report must not pass for this one's
    try:
        write_report(
            out_dir,
            metrics,
            labels,
            p_cal,
            p_uncalibrated=p_raw,
            thumbnails=thumbs,
            training_metrics_csv=training_metrics_csv,
            group_of=group_values,
            item_names=[s.path for s in kept],
        )
    except RuntimeError as exc:
        log.warning("report.html not written: %s", exc)
    return metrics


def _thumbnail(crop: np.ndarray) -> np.ndarray:
    import cv2

    small = cv2.resize(crop, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    return small if small.ndim == 3 else small[:, :, None]
