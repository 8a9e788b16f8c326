"""Evaluation metrics for the binary gender classifier (numpy only).

Conventions used throughout:

* ``labels`` are integers, 0 = "male", 1 = "female" (the positive class).
* ``p_female`` is the predicted probability of label 1.
* An item is predicted "female" when ``p_female >= threshold``.
* The confidence of a prediction is :func:`confidence`: ``max(p, 1 - p)`` at threshold 0.5, and
  in general 0.5 at the threshold rising to 1 on either side.
* Every number returned is a plain Python ``float``/``int`` (or ``None``) so results can go
  straight into ``json.dumps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from genderclass.calibration import confidence, sigmoid
from genderclass.config import ECE_BINS, LABELS

DEFAULT_MIN_CONFIDENCES: tuple[float, ...] = (
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
    0.97,
    0.99,
)


# --------------------------------------------------------------------------- helpers


def as_labels(labels: Any) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        y = y.reshape(-1)
    if y.size and not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (male) or 1 (female)")
    return y.astype(np.int64)


def _as_probs(p: Any, n: int | None = None) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64).reshape(-1)
    if n is not None and arr.size != n:
        raise ValueError(f"expected {n} probabilities, got {arr.size}")
    if arr.size and (np.any(~np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError("probabilities must be finite and within [0, 1]")
    return arr


def labels_and_probs(labels: Any, p_female: Any) -> tuple[np.ndarray, np.ndarray]:
    y = as_labels(labels)
    return y, _as_probs(p_female, y.size)


def safe_div(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _f(x: Any) -> float | None:
    """Plain float, or None for None/NaN."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def predict(p_female: Any, threshold: float = 0.5) -> np.ndarray:
    """Predicted labels: 1 (female) where ``p_female >= threshold``."""
    return (np.asarray(p_female, dtype=np.float64) >= threshold).astype(np.int64)


# --------------------------------------------------------------------------- intervals


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; ``(0.0, 1.0)`` when ``n == 0``."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError("successes must lie in [0, n]")
    phat = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (phat + z2 / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def class_recalls(y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per-class recall, its Wilson CI, and support (None recall when the class is absent)."""
    out: dict[str, dict[str, Any]] = {}
    for cls, name in enumerate(LABELS):
        mask = y == cls
        support = int(mask.sum())
        hits = int((pred[mask] == cls).sum())
        out[name] = {
            "recall": safe_div(hits, support),
            "ci95": list(wilson_interval(hits, support)) if support else None,
            "support": support,
        }
    return out


def balanced_from_recalls(recalls: dict[str, dict[str, Any]]) -> tuple[float | None, list[float] | None]:
    """Balanced accuracy = mean recall over the classes present; CI = mean of their Wilson bounds."""
    present = [r for r in recalls.values() if r["support"]]
    if not present:
        return None, None
    bal = float(np.mean([r["recall"] for r in present]))
    lo = float(np.mean([r["ci95"][0] for r in present]))
    hi = float(np.mean([r["ci95"][1] for r in present]))
    return bal, [lo, hi]


# --------------------------------------------------------------------------- core metrics


def _scored(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Labels, float scores, and the number of positives and negatives."""
    y = as_labels(labels)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size != y.size:
        raise ValueError("labels and scores differ in length")
    n_pos = int(y.sum())
    return y, s, n_pos, int(y.size - n_pos)


def roc_auc(labels: Any, scores: Any) -> float | None:
    """ROC-AUC via the Mann-Whitney U statistic with average ranks for ties; None if a class is absent."""
    y, s, n_pos, n_neg = _scored(labels, scores)
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average rank (1-based) over each run of tied scores
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points for every distinct score, thresholds descending (first is ``inf``: nothing positive).

    Point ``i`` predicts positive where ``score >= thresholds[i]``.
    """
    y, s, n_pos, n_neg = _scored(labels, scores)
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_curve needs both classes present")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tps = np.cumsum(y_sorted)
    fps = np.cumsum(1 - y_sorted)
    # keep the last index of each run of equal scores
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], s_sorted.size - 1]
    tpr = np.r_[0.0, tps[last] / n_pos]
    fpr = np.r_[0.0, fps[last] / n_neg]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, thresholds


def brier_score(labels: Any, p_female: Any) -> float:
    """Mean squared difference between ``p_female`` and the 0/1 label."""
    y, p = labels_and_probs(labels, p_female)
    if y.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def log_loss(labels: Any, p_female: Any, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood of the labels (probabilities clipped to ``[eps, 1 - eps]``)."""
    y, p = labels_and_probs(labels, p_female)
    if y.size == 0:
        return float("nan")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def reliability_bins(labels: Any, p_female: Any, n_bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Top-label reliability bins: equal-width confidence bins over ``[0.5, 1]``.

    Each bin is ``{"lo", "hi", "count", "mean_confidence", "accuracy"}``; the last two are None
    for empty bins. Correctness is that of the 0.5-threshold (argmax) prediction. Bins are
    half-open ``[lo, hi)`` except the last, which includes 1.0.
    """
    y, p = labels_and_probs(labels, p_female)
    conf = confidence(p)
    correct = predict(p, 0.5) == y
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = idx == b
        count = int(mask.sum())
        bins.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "count": count,
                "mean_confidence": float(conf[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(labels: Any, p_female: Any, n_bins: int = ECE_BINS) -> float:
    """Top-label ECE: count-weighted mean ``|accuracy - mean confidence|`` over the bins of
    :func:`reliability_bins` (equal width over ``[0.5, 1]``, argmax prediction at 0.5)."""
    bins = reliability_bins(labels, p_female, n_bins)
    total = sum(b["count"] for b in bins)
    if total == 0:
        return float("nan")
    return float(sum(b["count"] * abs(b["accuracy"] - b["mean_confidence"]) for b in bins if b["count"]) / total)


def confusion_matrix(labels: Any, p_female: Any, threshold: float = 0.5) -> list[list[int]]:
    """``[[TN, FP], [FN, TP]]``: rows = true (male, female), columns = predicted (male, female)."""
    y, p = labels_and_probs(labels, p_female)
    pred = predict(p, threshold)
    cm = np.zeros((2, 2), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return [[int(v) for v in row] for row in cm]


def binary_metrics(labels: Any, p_female: Any, threshold: float = 0.5) -> dict[str, Any]:
    """All headline metrics for one set of predictions.

    Keys: ``n``, ``threshold``, ``accuracy``, ``accuracy_ci95`` (Wilson), ``balanced_accuracy``,
    ``balanced_accuracy_ci95`` (mean of the two per-class recall Wilson bounds; an approximation,
    no bootstrap), ``per_class`` (``{"male"|"female": {"precision", "recall", "f1", "support"}}``,
    None where undefined), ``roc_auc`` (None if one class is absent), ``confusion_matrix``
    (``[[TN, FP], [FN, TP]]``), ``brier``, ``nll`` and ``ece`` (top-label, :data:`ECE_BINS` bins).
    """
    y, p = labels_and_probs(labels, p_female)
    n = int(y.size)
    pred = predict(p, threshold)
    correct = int((pred == y).sum())
    cm = confusion_matrix(y, p, threshold)
    recalls = class_recalls(y, pred)
    bal, bal_ci = balanced_from_recalls(recalls)
    per_class: dict[str, dict[str, Any]] = {}
    for cls, name in enumerate(LABELS):
        tp = cm[cls][cls]
        predicted = cm[0][cls] + cm[1][cls]
        support = cm[cls][0] + cm[cls][1]
        precision = safe_div(tp, predicted)
        recall = safe_div(tp, support)
        if precision is None or recall is None:
            f1 = None
        else:
            f1 = 2 * precision * recall / (precision + recall) if (precision + recall) else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support)}
    return {
        "n": n,
        "threshold": float(threshold),
        "accuracy": safe_div(correct, n),
        "accuracy_ci95": list(wilson_interval(correct, n)),
        "balanced_accuracy": bal,
        "balanced_accuracy_ci95": bal_ci,
        "per_class": per_class,
        "roc_auc": roc_auc(y, p),
        "confusion_matrix": cm,
        "brier": _f(brier_score(y, p)) if n else None,
        "nll": _f(log_loss(y, p)) if n else None,
        "ece": _f(expected_calibration_error(y, p)) if n else None,
    }


# --------------------------------------------------------------------------- calibration


def _nll_logits(logits: np.ndarray, y: np.ndarray) -> float:
    # -[y log s(z) + (1-y) log(1-s(z))] = softplus(z) - y z
    return float(np.mean(np.logaddexp(0.0, logits) - y * logits))


TEMPERATURE_RANGE = (0.05, 20.0)  # where fit_temperature searches


def fit_temperature(
    logits: Any, labels: Any, lo: float = TEMPERATURE_RANGE[0], hi: float = TEMPERATURE_RANGE[1], iters: int = 100
) -> float:
    """Temperature ``T > 0`` minimising the NLL of ``sigmoid(logits / T)``.

    Golden-section search on ``log T`` over ``[lo, hi]``; the NLL is convex in ``1/T`` so it is
    unimodal in ``log T``. Returns 1.0 for empty input.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = as_labels(labels)
    if z.size != y.size:
        raise ValueError("logits and labels differ in length")
    if z.size == 0:
        return 1.0
    a, b = math.log(lo), math.log(hi)
    inv_phi = (math.sqrt(5) - 1) / 2

    def f(log_t: float) -> float:
        return _nll_logits(z / math.exp(log_t), y)

    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = f(d)
        if b - a < 1e-9:
            break
    best = (a + b) / 2
    # compare against the interval ends in case the optimum sits on a boundary
    candidates = [(f(best), best), (f(math.log(lo)), math.log(lo)), (f(math.log(hi)), math.log(hi))]
    return float(math.exp(min(candidates)[1]))


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Calibrated probabilities ``sigmoid(logits / T)`` (an array of p_female)."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    return sigmoid(np.asarray(logits, dtype=np.float64) / temperature)


# --------------------------------------------------------------------------- operating points


def choose_threshold(labels: Any, p_female: Any) -> float:
    """Threshold maximising balanced accuracy (predict female where ``p >= t``).

    Every distinct way of splitting the sorted scores is scanned; each is represented by 0.5 if
    0.5 produces that split, otherwise by the midpoint between the neighbouring scores. Ties are
    broken towards 0.5. Returns 0.5 if a class is missing.
    """
    y, p = labels_and_probs(labels, p_female)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return 0.5
    u = np.unique(p)
    # split k: predict female for p >= u[k] (k = 0..len(u)); k = len(u) means nobody is female.
    lower = np.r_[-np.inf, u]  # open lower bound of the threshold interval for split k
    upper = np.r_[u, np.inf]  # closed upper bound
    # counts of positives / negatives with score >= u[k]
    order = np.searchsorted(u, p)
    pos_at = np.bincount(order[y == 1], minlength=u.size)
    neg_at = np.bincount(order[y == 0], minlength=u.size)
    tp = np.r_[np.cumsum(pos_at[::-1])[::-1], 0]
    tn = n_neg - np.r_[np.cumsum(neg_at[::-1])[::-1], 0]
    bal = 0.5 * (tp / n_pos + tn / n_neg)
    reps = np.empty(bal.size)
    for k in range(bal.size):
        lo_k, hi_k = lower[k], upper[k]
        if lo_k < 0.5 <= hi_k:
            reps[k] = 0.5
        elif np.isinf(lo_k):
            reps[k] = hi_k  # every score is >= hi_k, so t = hi_k gives "all female"
        elif np.isinf(hi_k):
            reps[k] = (lo_k + 1.0) / 2 if lo_k < 1.0 else float(np.nextafter(lo_k, np.inf))
        else:
            reps[k] = (lo_k + hi_k) / 2
    best = bal.max()
    tied = np.flatnonzero(np.isclose(bal, best, rtol=0, atol=1e-12))
    k = tied[np.argmin(np.abs(reps[tied] - 0.5))]
    return float(reps[k])


def answered_balanced_accuracy(y: np.ndarray, pred: np.ndarray, answered: np.ndarray) -> float | None:
    """Balanced accuracy on the answered items; None when nothing is answered or when every item of
    a class present in ``y`` was abstained on (a recall of that class cannot be measured)."""
    if any(not answered[y == cls].any() for cls in np.unique(y)):
        return None
    return balanced_from_recalls(class_recalls(y[answered], pred[answered]))[0]


def coverage_curve(
    labels: Any,
    p_female: Any,
    threshold: float = 0.5,
    min_confidences: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """Accuracy when only items with :func:`confidence` ``>= c`` are answered.

    Returns ``[{"min_confidence", "coverage", "accuracy", "balanced_accuracy", "n"}]`` per ``c``
    (sorted ascending); the accuracies are None when nothing is covered.
    """
    y, p = labels_and_probs(labels, p_female)
    conf = confidence(p, threshold)
    pred = predict(p, threshold)
    correct = pred == y
    cs = sorted(float(c) for c in (DEFAULT_MIN_CONFIDENCES if min_confidences is None else min_confidences))
    out = []
    for c in cs:
        mask = conf >= c
        n = int(mask.sum())
        out.append(
            {
                "min_confidence": c,
                "coverage": float(n / y.size) if y.size else 0.0,
                "accuracy": float(correct[mask].mean()) if n else None,
                "balanced_accuracy": answered_balanced_accuracy(y, pred, mask),
                "n": n,
            }
        )
    return out


def choose_min_confidence(labels: Any, p_female: Any, threshold: float = 0.5, min_coverage: float = 0.8) -> float:
    """Confidence cut-off below which the model should answer "uncertain".

    Candidates are 0.5 and every distinct confidence in ``[0.5, 1)``. Returns the smallest
    candidate whose covered accuracy has at most half the full-coverage error rate while keeping
    coverage ``>= min_coverage``; if none does, the candidate with the best covered accuracy at
    that coverage (smallest on ties). Returns 0.5 when every prediction is already correct.
    """
    y, p = labels_and_probs(labels, p_female)
    if y.size == 0:
        return 0.5
    conf = confidence(p, threshold)
    correct = predict(p, threshold) == y
    full_err = 1.0 - float(correct.mean())
    if full_err == 0.0:
        return 0.5
    cands = np.unique(np.r_[0.5, conf[(conf >= 0.5) & (conf < 1.0)]])
    best_c, best_acc = 0.5, float(correct.mean())
    for c in cands:
        mask = conf >= c
        n = int(mask.sum())
        if n == 0 or n / y.size < min_coverage:
            break  # coverage only shrinks as c grows
        acc = float(correct[mask].mean())
        if 1.0 - acc <= full_err / 2 + 1e-12:
            return float(c)
        if acc > best_acc + 1e-12:
            best_c, best_acc = float(c), acc
    return best_c


def most_confident_errors(labels: Any, p_female: Any, threshold: float = 0.5, k: int = 16) -> list[int]:
    """Indices of up to ``k`` misclassified items, most confident in the wrong answer first.

    Confidence in the wrong answer is :func:`confidence` (``p`` for items wrongly called female and
    ``1 - p`` for items wrongly called male at threshold 0.5); ties keep index order.
    """
    y, p = labels_and_probs(labels, p_female)
    pred = predict(p, threshold)
    wrong = np.flatnonzero(pred != y)
    if wrong.size == 0 or k <= 0:
        return []
    conf_wrong = confidence(p[wrong], threshold)
    order = np.argsort(-conf_wrong, kind="mergesort")
    return [int(i) for i in wrong[order][:k]]
