"""Dataset-level estimates over many predictions (``predict --summary``): the share of each label.

Counting argmax labels is biased whenever the classifier's accuracy differs by class: with recall
0.95 for men and 0.80 for women, a collection of half women is counted as 42.5 % women. The mean
of *calibrated* probabilities is unbiased for the share of the positive class as long as the model
is calibrated on data like the one scored (its temperature was fitted on its own validation split,
so on a collection unlike its training data the estimate inherits that shift). The interval is a
parametric bootstrap of the items' labels (:func:`share_interval`); the uncertainty of the
calibration itself is not in it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..config import LABELS, UNCERTAIN

BOOTSTRAP_RESAMPLES = 1000
_MAX_DISTINCT = 20_000  # above this many distinct probabilities, the bootstrap works on a 1e-4 grid


def share_interval(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Interval for the share of positives among these items, estimated as the mean of their
    calibrated probabilities ``values``: a parametric bootstrap that draws every item's label from its
    probability, so its width is the labels' own uncertainty (the share of *these* images; the share
    in a population they were sampled from would add the sampling of the images). Time and memory do
    not grow with the number of items: the labels are a binomial draw per distinct value (exact;
    beyond 20,000 distinct values they are rounded to 1e-4 first, which moves any mean by at most 5e-5)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        raise ValueError("no values to bootstrap")
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) > _MAX_DISTINCT:
        distinct, counts = np.unique(np.round(values, 4), return_counts=True)
    rng = np.random.default_rng(seed)
    shares = [
        rng.binomial(counts, distinct, size=(min(100, resamples - start), len(distinct))).sum(axis=1) / len(values)
        for start in range(0, resamples, 100)
    ]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(np.concatenate(shares), [tail, 100.0 - tail])
    return float(low), float(high)


class LabelShares:
    """Accumulates prediction results (the ``predict`` JSON schema) and summarises them.

    ``threshold``: the model's decision threshold, which gives an abstained item its argmax label."""

    def __init__(self, threshold: float, unit: str = "face") -> None:
        self.threshold = float(threshold)
        self.unit = unit
        self.files = 0
        self.failed = 0
        self.p_female: list[float] = []
        self.labels: Counter[str] = Counter()
        self.argmax: Counter[str] = Counter()

    def add(self, result: dict[str, Any]) -> None:
        self.files += 1
        if result.get("error"):
            self.failed += 1
            return
        for face in result.get("faces") or []:
            p, label = float(face["p_female"]), face["label"]
            self.p_female.append(p)
            self.labels[label] += 1
            decided = label if label != UNCERTAIN else LABELS[int(p >= self.threshold)]
            self.argmax[decided] += 1

    def summary(self, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict[str, Any]:
        """The share of each label estimated from the calibrated probabilities (mean, bootstrap 95 %
        interval) beside the argmax counts and the abstentions; shares are None when nothing was classified."""
        n = len(self.p_female)
        female, male = LABELS[1], LABELS[0]
        shares: dict[str, Any] = {female: None, male: None}
        if n:
            mean = float(np.mean(self.p_female))
            low, high = share_interval(np.array(self.p_female), resamples, seed=seed)
            shares = {
                female: {"estimate": round(mean, 6), "ci95": [round(low, 6), round(high, 6)]},
                male: {"estimate": round(1.0 - mean, 6), "ci95": [round(1.0 - high, 6), round(1.0 - low, 6)]},
            }
        return {
            "files": self.files,
            "files_failed": self.failed,
            "unit": self.unit,
            "classified": n,
            "estimated_share": shares,
            "argmax_counts": {label: self.argmax[label] for label in (male, female)},
            "argmax_share": {label: round(self.argmax[label] / n, 6) if n else None for label in (male, female)},
            "abstained": self.labels[UNCERTAIN],
            "method": f"mean calibrated p_{female} over the classified {self.unit}s; 95 % interval: each {self.unit}'s "
            f"label drawn from its probability ({resamples} resamples); argmax at the model's threshold ({self.threshold:.3f}), abstentions included",
        }
