"""Measurements per subject: one person's items (fingerprints) fused into one answer, and how that
answer improves with the number of items given."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from genderclass.calibration import logit, sigmoid

from .calibrated import calibrated_metrics
from .metrics import as_labels, binary_metrics, expected_calibration_error


def subjects_with_mixed_labels(subjects: Sequence[str], labels: Any) -> list[str]:
    """The subjects (named by ``str``, sorted) whose items carry both labels: they cannot be fused."""
    seen: dict[str, set[int]] = {}
    for subject, label in zip(subjects, as_labels(labels).tolist(), strict=True):
        seen.setdefault(str(subject), set()).add(label)
    return sorted(subject for subject, found in seen.items() if len(found) > 1)


def fuse_by_subject(
    subjects: Sequence[str],
    labels: Any,
    logits: Any,
    how: str = "mean_logit",
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Fuse per-item predictions into one per subject (e.g. all fingerprints of one person).

    ``how="mean_logit"`` (default) averages the logits, i.e. the geometric mean of the odds;
    ``how="mean_prob"`` averages the probabilities and returns the logit of that mean. Subjects are
    returned sorted; a subject whose items carry different labels raises ValueError.
    Returns ``(subject_ids, labels, fused_logits)``; use :func:`genderclass.calibration.sigmoid` for p_female.
    """
    y = as_labels(labels)
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    subj = [str(s) for s in subjects]
    if not (len(subj) == y.size == z.size):
        raise ValueError("subjects, labels and logits must have the same length")
    if how not in ("mean_logit", "mean_prob"):
        raise ValueError(f"unknown fusion {how!r}")
    ids = sorted(set(subj))
    index = {s: i for i, s in enumerate(ids)}
    inv = np.array([index[s] for s in subj], dtype=np.int64)
    counts = np.bincount(inv, minlength=len(ids))
    pos = np.bincount(inv, weights=y, minlength=len(ids))
    if bad := subjects_with_mixed_labels(subj, y):
        raise ValueError(f"subjects with inconsistent labels: {bad[:5]}")
    fused_labels = (pos > 0).astype(np.int64)
    if how == "mean_logit":
        fused = np.bincount(inv, weights=z, minlength=len(ids)) / counts
    else:
        fused = logit(np.bincount(inv, weights=sigmoid(z), minlength=len(ids)) / counts)
    return ids, fused_labels, fused


def fuse_subsets(
    subjects: Sequence[str], labels: Any, logits: Any, k: int, draws: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean logits of ``k`` of a subject's items, as if a person gave only ``k`` prints: ``draws``
    random subsets per subject (so every subject weighs the same; with exactly ``k`` items they all
    repeat the one subset), drawn from the items in logit order so that the result does not depend
    on the order the items come in; subjects with fewer than ``k`` items are left out. Returns
    ``(labels, mean_logits)``, one entry per subset."""
    if k < 1 or draws < 1:
        raise ValueError(f"k and draws must be >= 1, got {k} and {draws}")
    y = as_labels(labels)
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    subj = np.array([str(s) for s in subjects])
    if not (subj.size == y.size == z.size):
        raise ValueError("subjects, labels and logits must have the same length")
    rng = np.random.default_rng(seed)
    fused_labels, fused = [], []
    for subject in sorted(set(subj.tolist())):
        items = np.flatnonzero(subj == subject)
        if len(items) < k:
            continue
        items = items[np.argsort(z[items], kind="stable")]
        for _ in range(draws):
            chosen = rng.choice(items, k, replace=False)
            fused_labels.append(y[items[0]])
            fused.append(z[chosen].mean())
    return np.array(fused_labels, dtype=np.int64), np.array(fused, dtype=np.float64)


def items_per_subject(subjects: Sequence[str], ids: Sequence[str]) -> list[int]:
    """How many items each of ``ids`` has among ``subjects`` (named by ``str``, as :func:`fuse_by_subject` does)."""
    counts = Counter(str(s) for s in subjects)
    return [counts[str(i)] for i in ids]


FUSION_MIN_SUBJECTS = 20  # a count fitted on fewer subjects than this would be noise


def _counts(subjects: Sequence[str]) -> np.ndarray:
    """Items per subject (subjects named by ``str``), in sorted subject order."""
    return np.array(items_per_subject(subjects, sorted({str(s) for s in subjects})), dtype=np.int64)


def largest_count(subjects: Sequence[str], min_subjects: int = FUSION_MIN_SUBJECTS) -> int:
    """The largest number of items per subject that ``min_subjects`` subjects (all of them, if
    fewer) reach, at least 1: how far a per-count table can be fitted."""
    counts = _counts(subjects)
    if not counts.size:
        return 1
    return max(1, int(np.sort(counts)[::-1][min(min_subjects, counts.size) - 1]))


def by_print_count(
    subjects: Sequence[str],
    labels: Any,
    logits: Any,
    temperature_of: Callable[[int], float],
    threshold: float,
    draws: int = 20,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """How a person's fused answer improves with the number of prints given: for k = 1 .. the
    largest count that enough subjects reach (:func:`largest_count`), balanced accuracy, ROC-AUC and ECE of the mean logit of k random prints per
    subject (:func:`fuse_subsets`), calibrated with ``temperature_of(k)``."""
    counts = _counts(subjects)
    rows = []
    for k in range(1, largest_count(subjects) + 1):
        y, z = fuse_subsets(subjects, labels, logits, k, draws, seed)
        p = sigmoid(z / temperature_of(k))
        scored = binary_metrics(y, p, threshold)
        rows.append(
            {
                "prints": k,
                "n_subjects": int((counts >= k).sum()),
                "n_fused": int(y.size),
                "balanced_accuracy": scored["balanced_accuracy"],
                "roc_auc": scored["roc_auc"],
                "ece": expected_calibration_error(y, p),
            }
        )
    return rows


def person_metrics(
    subjects: Sequence[str],
    labels: Any,
    logits: Any,
    temperature_of: Callable[[Any], Any],
    calibration: dict[str, float],
    by_prints: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """What a model's answers for whole people measure, for ``export`` (on test) and ``evaluate``
    alike: :func:`per_subject_metrics`, and with ``by_prints`` :func:`by_print_count` (else None)."""
    per_subject = per_subject_metrics(subjects, labels, logits, temperature_of, calibration)
    if not by_prints:
        return per_subject, None
    return per_subject, by_print_count(subjects, labels, logits, temperature_of, calibration["threshold"])


def per_subject_metrics(
    subjects: Sequence[str],
    labels: Any,
    logits: Any,
    temperature_of: Callable[[Any], Any],
    calibration: dict[str, float],
) -> dict[str, Any]:
    """:func:`.calibrated.calibrated_metrics` of each subject's mean logit, as prediction answers for a person:
    its temperature from ``temperature_of(number of items)``, the threshold and abstention level
    of ``calibration``; plus ``n_subjects``."""
    ids, fused_labels, fused_logits = fuse_by_subject(subjects, labels, logits)
    temperature = temperature_of(np.asarray(items_per_subject(subjects, ids)))
    result = calibrated_metrics(
        fused_labels, fused_logits, temperature, calibration["threshold"], calibration["min_confidence"]
    )
    result["n_subjects"] = len(ids)
    return result
