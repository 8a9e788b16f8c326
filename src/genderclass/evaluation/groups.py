"""Per-group measurements: accuracy by an attribute (age band, race, finger, ...) and by its
intersection with the true gender, and each group's logit offset (:func:`group_offsets`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from genderclass.config import AGE_BANDS, LABELS, MAX_GROUP_VALUES

from .metrics import (
    as_labels,
    balanced_from_recalls,
    class_recalls,
    labels_and_probs,
    predict,
    safe_div,
    wilson_interval,
)

SUMMARY_MIN_N = 30
log = logging.getLogger(__name__)

_BAND_NAMES = tuple(name for _, _, name in AGE_BANDS)


def age_band(age: float | str) -> str:
    """Age band name from :data:`genderclass.config.AGE_BANDS` (e.g. ``"25"`` -> ``"20-29"``).

    Band names themselves pass through unchanged. Raises ValueError for unparseable or negative ages.
    """
    if isinstance(age, str):
        text = age.strip()
        if text in _BAND_NAMES:
            return text
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"not an age: {age!r}") from None
    else:
        value = float(age)
    if math.isnan(value) or value < 0:
        raise ValueError(f"not an age: {age!r}")
    years = math.floor(value)
    for lo, hi, name in AGE_BANDS:
        if lo <= years <= hi:
            return name
    return AGE_BANDS[-1][2]


def _subset_stats(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    n = int(y.size)
    correct = int((pred == y).sum())
    recalls = class_recalls(y, pred)
    bal, bal_ci = balanced_from_recalls(recalls)
    return {
        "n": n,
        "accuracy": safe_div(correct, n),
        "ci95": list(wilson_interval(correct, n)),
        "balanced_accuracy": bal,
        "balanced_accuracy_ci95": bal_ci,
        "recall": {name: r["recall"] for name, r in recalls.items()},
        "recall_ci95": {name: r["ci95"] for name, r in recalls.items()},
    }


def _summary(stats: dict[str, dict[str, Any]], min_n: int) -> dict[str, Any]:
    eligible = [(s["accuracy"], name) for name, s in stats.items() if s["n"] >= min_n and s["accuracy"] is not None]
    if not eligible:
        return {"worst_group": None, "worst_accuracy": None, "largest_gap": None, "min_n": int(min_n)}
    worst_acc, worst = min(eligible)
    best_acc = max(a for a, _ in eligible)
    return {
        "worst_group": worst,
        "worst_accuracy": float(worst_acc),
        "largest_gap": float(best_acc - worst_acc),
        "min_n": int(min_n),
    }


def _sort_key(attr: str):
    from .slices import SLICE_ATTRIBUTES, band_order

    def key(value: str) -> tuple:
        if attr == "age" and value in _BAND_NAMES:
            return (0, _BAND_NAMES.index(value), value)
        if attr in SLICE_ATTRIBUTES:  # pose and size bands, by their lower ends
            return (1, band_order(value), value)
        return (1, 0, value)

    return key


def normalise_group_values(attr: str, values: Sequence[Any], n: int) -> list[str | None]:
    if len(values) != n:
        raise ValueError(f"group {attr!r} has {len(values)} values for {n} items")
    out: list[str | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
            out.append(None)
        elif attr == "age":
            try:
                out.append(age_band(v))
            except ValueError:
                out.append(None)
        else:
            out.append(str(v).strip())
    return out


def attribute_groups(attrs: Sequence[dict[str, str]], skip: Sequence[str] = ()) -> dict[str, list[str | None]]:
    """Each item's value per attribute, for :func:`group_metrics`: every attribute the items carry,
    except those in ``skip`` and those with more than ``MAX_GROUP_VALUES`` distinct values (an id,
    a date: one group per item). Ages are grouped into bands, so they are always kept."""
    names = sorted({key for item in attrs for key in item if key not in skip})
    groups = {key: [item.get(key) for item in attrs] for key in names}
    many = [k for k, v in groups.items() if k != "age" and len(set(v) - {None}) > MAX_GROUP_VALUES]
    if many:
        log.info("not grouped by %s: more than %d distinct values", ", ".join(many), MAX_GROUP_VALUES)
    return {key: values for key, values in groups.items() if key not in many}


def group_metrics(
    labels: Any,
    p_female: Any,
    groups: dict[str, Sequence[Any]],
    threshold: float = 0.5,
    min_n: int = 1,
    summary_min_n: int = SUMMARY_MIN_N,
) -> dict[str, dict[str, Any]]:
    """Per-group metrics for each attribute and for its intersection with the true gender.

    ``groups`` maps an attribute name to one value per item (None/"" = unknown, skipped). For the
    attribute ``"age"`` the values are ages, converted with :func:`age_band`. The result maps
    ``attr`` and ``f"{attr}_x_gender"`` (values like ``"white/female"``) to
    ``{value: {"n", "accuracy", "ci95", "balanced_accuracy", "balanced_accuracy_ci95", "recall",
    "recall_ci95"}, "_summary": {"worst_group", "worst_accuracy", "largest_gap", "min_n"}}``.
    Groups with fewer than ``min_n`` items are omitted; the summary only considers groups with at
    least ``summary_min_n`` items. Balanced accuracy averages the recalls of the classes present.
    Values are ordered by age band for ``"age"`` and alphabetically otherwise.
    """
    y, p = labels_and_probs(labels, p_female)
    pred = predict(p, threshold)
    out: dict[str, dict[str, Any]] = {}
    for attr, raw in groups.items():
        values = normalise_group_values(attr, raw, y.size)
        key = _sort_key(attr)
        names = sorted({v for v in values if v is not None}, key=key)
        arr = np.array([v if v is not None else "" for v in values], dtype=object)
        known = np.array([v is not None for v in values], dtype=bool)
        per_value: dict[str, dict[str, Any]] = {}
        cross: dict[str, dict[str, Any]] = {}
        for name in names:
            mask = known & (arr == name)
            if int(mask.sum()) >= min_n:
                per_value[name] = _subset_stats(y[mask], pred[mask])
            for cls, gender in enumerate(LABELS):
                sub = mask & (y == cls)
                if int(sub.sum()) >= max(min_n, 1):
                    cross[f"{name}/{gender}"] = _subset_stats(y[sub], pred[sub])
        per_value["_summary"] = _summary({k: v for k, v in per_value.items() if k != "_summary"}, summary_min_n)
        cross["_summary"] = _summary({k: v for k, v in cross.items() if k != "_summary"}, summary_min_n)
        out[attr] = per_value
        out[f"{attr}_x_gender"] = cross
    return out


def group_offsets(labels: Any, logits: Any, groups: Sequence[str]) -> dict[str, float]:
    """How far each group's logits sit from all of them (e.g. per finger: a thumb reads more
    "male" than a little finger for everyone). Both sides are class-balanced means (the mean of the
    two labels' mean logits), so a group's own label mix does not count as its offset. Groups
    lacking either label are left out."""
    y = as_labels(labels)
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    g = np.array([str(v) for v in groups])
    if not (y.size == z.size == g.size):
        raise ValueError("labels, logits and groups must have the same length")

    def balanced_mean(mask: np.ndarray) -> float | None:
        means = [z[mask & (y == label)] for label in (0, 1)]
        return None if any(m.size == 0 for m in means) else float(np.mean([m.mean() for m in means]))

    overall = balanced_mean(np.ones(z.size, dtype=bool))
    if overall is None:
        raise ValueError("group offsets need both labels")
    offsets = {str(group): balanced_mean(g == group) for group in sorted(set(g.tolist()))}
    return {group: value - overall for group, value in offsets.items() if value is not None}


def remove_offsets(logits: Any, groups: Sequence[str], offsets: dict[str, float]) -> np.ndarray:
    """Each logit minus its group's offset (:func:`group_offsets`); an unknown group is an error."""
    missing = sorted({str(group) for group in groups} - set(offsets))
    if missing:
        raise ValueError(f"no offset for {', '.join(missing)}; known: {', '.join(offsets)}")
    return np.asarray(logits, dtype=np.float64).reshape(-1) - np.array([offsets[str(g)] for g in groups])
