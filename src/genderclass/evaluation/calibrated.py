"""Everything measured on one labelled set from raw logits, as the shipped model answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from genderclass.calibration import confidence, sigmoid
from genderclass.config import LABELS

from .groups import group_metrics
from .metrics import (
    answered_balanced_accuracy,
    as_labels,
    binary_metrics,
    brier_score,
    coverage_curve,
    expected_calibration_error,
    predict,
)


def calibrated_metrics(
    labels: Any,
    logits: Any,
    temperature: float,
    threshold: float,
    min_confidence: float,
    groups: dict[str, list[str | None]] | None = None,
) -> dict[str, Any]:
    """Everything measured on one labelled set from raw logits: binary metrics on calibrated
    probabilities, ECE and Brier before/after temperature scaling, the accuracy-coverage curve and
    the abstention point, and per-group metrics when ``groups`` is given."""
    y = as_labels(labels)
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    p_raw, p_cal = sigmoid(z), sigmoid(z / temperature)
    result = binary_metrics(y, p_cal, threshold)
    result["ece"] = expected_calibration_error(y, p_cal)
    result["ece_uncalibrated"] = expected_calibration_error(y, p_raw)
    result["brier_uncalibrated"] = brier_score(y, p_raw)
    result["coverage_curve"] = coverage_curve(y, p_cal, threshold)
    covered = confidence(p_cal, threshold) >= min_confidence
    result["min_confidence"] = float(min_confidence)
    result["coverage_at_threshold"] = float(covered.mean()) if y.size else 0.0
    pred = predict(p_cal, threshold)
    result["accuracy_at_threshold"] = float((pred[covered] == y[covered]).mean()) if covered.any() else None
    result["balanced_accuracy_at_threshold"] = answered_balanced_accuracy(y, pred, covered)
    result["coverage_at_threshold_by_class"] = {
        name: float(covered[y == cls].mean()) if (y == cls).any() else None for cls, name in enumerate(LABELS)
    }
    if groups:
        result["groups"] = group_metrics(y, p_cal, groups, threshold)
    return result
