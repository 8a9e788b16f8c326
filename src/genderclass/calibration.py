"""The probability scale of a prediction: calibrated P(female), the confidence reported with it,
and the temperature for a mean of several logits (numpy only; used by prediction, export and
evaluation alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def sigmoid(z: Any) -> np.ndarray:
    """Numerically stable logistic function."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def logit(p: Any, eps: float = 1e-7) -> np.ndarray:
    """Inverse of :func:`sigmoid`, with probabilities clipped to ``[eps, 1 - eps]``."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


CONFIDENCE_SCALE = "threshold-centred"  # the name exports record for :func:`confidence`'s definition


def confidence(p_female: Any, threshold: float = 0.5) -> np.ndarray:
    """How sure a prediction is: 0.5 at the decision threshold, rising to 1 on either side.

    The probability of the predicted label once the log-odds are shifted so that ``threshold``
    maps to 0.5 (``q = p(1-t) / (p(1-t) + (1-p)t)``, then ``max(q, 1 - q)``): for a threshold
    chosen for balanced accuracy, the probability with both labels weighted equally. With the
    default threshold 0.5 this is ``max(p, 1 - p)``, the probability of the predicted label.
    """
    p = np.asarray(p_female, dtype=np.float64)
    t = float(threshold)
    if t != 0.5:
        female, male = p * (1.0 - t), (1.0 - p) * t
        p = np.divide(female, female + male, out=np.full_like(p, 0.5), where=female + male > 0)
    return np.maximum(p, 1.0 - p)


def temperature_by_count(n: Any, by_count: Sequence[float], default: float, single: float | None = None) -> Any:
    """The temperature for mean logits over ``n`` items (an int or an array of counts, each >= 1):
    ``by_count[k - 1]`` for k items, its last entry for more; ``default`` without a table. With
    ``single`` (the per-item temperature), a "mean" of one item is that item and gets it."""
    counts = np.asarray(n, dtype=np.int64)
    if np.any(counts < 1):
        raise ValueError(f"a mean over fewer than one item has no temperature: {n}")
    if len(by_count):
        table = np.asarray(by_count, dtype=np.float64)
        picked = table[np.clip(counts, 1, table.size) - 1]
    else:
        picked = np.full(counts.shape, float(default))
    if single is not None:
        picked = np.where(counts == 1, float(single), picked)
    return float(picked) if np.ndim(picked) == 0 else picked
