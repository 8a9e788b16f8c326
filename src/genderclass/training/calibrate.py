"""What an export fits and records from validation and test logits: the calibration (temperature,
threshold, abstention, per-person temperatures, finger offsets) and the metrics of every split,
including test prints damaged like SOCOFing's altered sets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import calibration as cal
from ..data.readers import FINGERS, finger_name
from ..evaluation import metrics as M
from ..evaluation.calibrated import calibrated_metrics
from ..evaluation.fusion import fuse_by_subject, fuse_subsets, largest_count, person_metrics
from ..evaluation.groups import attribute_groups, group_offsets, remove_offsets
from ..modalities import modality_for

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..data.prepare import PreparedData
    from ..inference.classifier import GenderClassifier


def simulated_alterations(images: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Test prints damaged like SOCOFing's altered sets: obliteration patches, z-cut lines, both."""
    from .augment import random_cut_lines, random_erasing

    torch.manual_seed(seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    obliterated = random_erasing(x, p=1.0, area=(0.08, 0.2), value=255.0)
    cut = random_cut_lines(x, p=1.0, max_thickness=5.0)
    both = random_cut_lines(obliterated, p=1.0, max_thickness=5.0)
    to_nhwc = lambda t: t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # noqa: E731
    return {"obliteration": to_nhwc(obliterated), "zcut": to_nhwc(cut), "both": to_nhwc(both)}


def calibrate(val_labels: np.ndarray, val_logits: np.ndarray, modality: str) -> dict:
    """Temperature, decision threshold and abstention level, all chosen on validation."""
    temperature = M.fit_temperature(val_logits, val_labels)
    lo, hi = M.TEMPERATURE_RANGE
    if not lo * 1.2 < temperature < hi / 1.05:  # at an end of fit_temperature's search range
        log.warning(
            "the calibration temperature %.2f sits at the end of its range: %d validation images are too few, or "
            "too easy, to calibrate on; probabilities will be over- or under-confident",
            temperature,
            len(val_labels),
        )
    p_val = M.sigmoid(val_logits / temperature)
    threshold = M.choose_threshold(val_labels, p_val) if modality_for(modality).tunes_threshold else 0.5
    min_confidence = M.choose_min_confidence(val_labels, p_val, threshold)
    return {"temperature": float(temperature), "threshold": float(threshold), "min_confidence": float(min_confidence)}


def fusion_temperature(subjects: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> float:
    """Temperature for a person's mean logit, fitted on the validation subjects: averaging several
    prints removes noise, so the fused score needs its own scale to be calibrated."""
    _, fused_labels, fused_logits = fuse_by_subject(subjects.tolist(), labels, logits)
    return float(M.fit_temperature(fused_logits, fused_labels))


def fusion_temperatures(subjects: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> list[float]:
    """Temperature for the mean logit of k prints, k = 1 .. :func:`fusion.largest_count` (entry k - 1),
    fitted on random k-print subsets of the validation subjects (:func:`fusion.fuse_subsets`). The
    fewer prints averaged, the less noise is removed: a whole hand needs less than one print, all ten
    the least. Entry 0 (one print) only documents that it agrees with the per-print temperature,
    which prediction uses for a single print."""
    out = []
    for k in range(1, largest_count(subjects.tolist()) + 1):
        fused_labels, fused_logits = fuse_subsets(subjects.tolist(), labels, logits, k)
        out.append(float(M.fit_temperature(fused_logits, fused_labels)))
    return out


def split_metrics(labels: np.ndarray, logits: np.ndarray, calibration: dict, attrs: list[dict] | None = None) -> dict:
    """Metrics of one split with calibrated probabilities; per-group metrics when attributes are known."""
    groups = attribute_groups(attrs, skip=("alteration",)) if attrs else None
    return calibrated_metrics(
        labels, logits, calibration["temperature"], calibration["threshold"], calibration["min_confidence"], groups
    )


def measure(
    shipped: GenderClassifier, data: PreparedData, val_logits: np.ndarray, test_logits: np.ndarray
) -> tuple[dict, dict]:
    """Calibration fitted on validation, and the metrics of every split, for the exported file."""
    cache, spec = data.cache, modality_for(shipped.modality)
    val, test = data.indices("val"), data.indices("test")
    calibration = calibrate(cache.labels[val], val_logits, spec.name)
    if spec.fuses_per_person and (cache.subjects[val] != "").all():
        calibration["fusion_temperature"] = fusion_temperature(cache.subjects[val], cache.labels[val], val_logits)
        calibration["fusion_temperatures"] = fusion_temperatures(cache.subjects[val], cache.labels[val], val_logits)
    metrics = {
        "validation": split_metrics(cache.labels[val], val_logits, calibration),
        "test": split_metrics(cache.labels[test], test_logits, calibration, [cache.attrs[i] for i in test]),
    }
    if spec.fingers and (known := _finger_known(data, val_logits, test_logits)):
        calibration["finger_known"], metrics["test_finger_known"] = known
    if spec.fuses_per_person and (cache.subjects[test] != "").all():
        test_subjects = cache.subjects[test].tolist()
        # as at prediction: each subject's temperature for its number of prints (see the classifier)
        table = calibration.get("fusion_temperatures", [])
        whole = calibration.get("fusion_temperature", calibration["temperature"])

        def temperature_of(n):
            return cal.temperature_by_count(n, table, whole, single=calibration["temperature"])

        metrics["test_per_subject"], metrics["test_by_prints"] = person_metrics(
            test_subjects, cache.labels[test], test_logits, temperature_of, calibration, by_prints=True
        )
    if spec.simulates_alterations:
        for kind, altered in simulated_alterations(cache.images[test]).items():
            altered_logits = shipped.logits(altered, batch_size=256)
            metrics[f"test_altered_{kind}"] = split_metrics(cache.labels[test], altered_logits, calibration)
    return calibration, metrics


def _finger(attrs: dict) -> str | None:
    finger = finger_name(attrs.get("finger"))
    return finger if finger in FINGERS else None


def _finger_known(data: PreparedData, val_logits: np.ndarray, test_logits: np.ndarray) -> tuple[dict, dict] | None:
    """With the finger of every print known (SOCOFing names, a CSV column): each finger's offset
    and the calibration without the offsets (fitted on validation), and the test metrics with the
    offsets removed. None when a finger is unnamed or lacks either label on validation."""
    cache, val, test = data.cache, data.indices("val"), data.indices("test")
    val_fingers, test_fingers = ([_finger(cache.attrs[i]) for i in split] for split in (val, test))
    if not (all(val_fingers) and all(test_fingers)):
        return None
    fitted = group_offsets(cache.labels[val], val_logits, val_fingers)
    if not {*val_fingers, *test_fingers} <= set(fitted):
        return None
    offsets = {finger: fitted[finger] for finger in FINGERS if finger in fitted}  # thumb ... little
    corrected = remove_offsets(val_logits, val_fingers, offsets)
    calibration = {"offsets": offsets, **calibrate(cache.labels[val], corrected, "fingerprint")}
    if (cache.subjects[val] != "").all():  # a person's prints with their fingers named (fuse)
        calibration["fusion_temperatures"] = fusion_temperatures(cache.subjects[val], cache.labels[val], corrected)
    test_corrected = remove_offsets(test_logits, test_fingers, offsets)
    return calibration, split_metrics(cache.labels[test], test_corrected, calibration, [cache.attrs[i] for i in test])
