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
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from genderclass.calibration import confidence, logit, sigmoid
from genderclass.config import AGE_BANDS, ECE_BINS, LABELS

SUMMARY_MIN_N = 30
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


def _as_labels(labels: Any) -> np.ndarray:
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


def _labels_probs(labels: Any, p_female: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _as_labels(labels)
    return y, _as_probs(p_female, y.size)


def _safe_div(num: float, den: float) -> float | None:
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


def _recalls(y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per-class recall, its Wilson CI, and support (None recall when the class is absent)."""
    out: dict[str, dict[str, Any]] = {}
    for cls, name in enumerate(LABELS):
        mask = y == cls
        support = int(mask.sum())
        hits = int((pred[mask] == cls).sum())
        out[name] = {
            "recall": _safe_div(hits, support),
            "ci95": list(wilson_interval(hits, support)) if support else None,
            "support": support,
        }
    return out


def _balanced(recalls: dict[str, dict[str, Any]]) -> tuple[float | None, list[float] | None]:
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
    y = _as_labels(labels)
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
    y, p = _labels_probs(labels, p_female)
    if y.size == 0:
        return float("nan")
    return float(np.mean((p - y) ** 2))


def log_loss(labels: Any, p_female: Any, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood of the labels (probabilities clipped to ``[eps, 1 - eps]``)."""
    y, p = _labels_probs(labels, p_female)
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
    y, p = _labels_probs(labels, p_female)
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
    y, p = _labels_probs(labels, p_female)
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
    y, p = _labels_probs(labels, p_female)
    n = int(y.size)
    pred = predict(p, threshold)
    correct = int((pred == y).sum())
    cm = confusion_matrix(y, p, threshold)
    recalls = _recalls(y, pred)
    bal, bal_ci = _balanced(recalls)
    per_class: dict[str, dict[str, Any]] = {}
    for cls, name in enumerate(LABELS):
        tp = cm[cls][cls]
        predicted = cm[0][cls] + cm[1][cls]
        support = cm[cls][0] + cm[cls][1]
        precision = _safe_div(tp, predicted)
        recall = _safe_div(tp, support)
        if precision is None or recall is None:
            f1 = None
        else:
            f1 = 2 * precision * recall / (precision + recall) if (precision + recall) else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support)}
    return {
        "n": n,
        "threshold": float(threshold),
        "accuracy": _safe_div(correct, n),
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


def fit_temperature(logits: Any, labels: Any, lo: float = 0.05, hi: float = 20.0, iters: int = 100) -> float:
    """Temperature ``T > 0`` minimising the NLL of ``sigmoid(logits / T)``.

    Golden-section search on ``log T`` over ``[lo, hi]``; the NLL is convex in ``1/T`` so it is
    unimodal in ``log T``. Returns 1.0 for empty input.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = _as_labels(labels)
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
    y, p = _labels_probs(labels, p_female)
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
    return _balanced(_recalls(y[answered], pred[answered]))[0]


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
    y, p = _labels_probs(labels, p_female)
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
    y, p = _labels_probs(labels, p_female)
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
    y, p = _labels_probs(labels, p_female)
    pred = predict(p, threshold)
    wrong = np.flatnonzero(pred != y)
    if wrong.size == 0 or k <= 0:
        return []
    conf_wrong = confidence(p[wrong], threshold)
    order = np.argsort(-conf_wrong, kind="mergesort")
    return [int(i) for i in wrong[order][:k]]


# --------------------------------------------------------------------------- groups


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
    recalls = _recalls(y, pred)
    bal, bal_ci = _balanced(recalls)
    return {
        "n": n,
        "accuracy": _safe_div(correct, n),
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
    def key(value: str) -> tuple:
        if attr == "age" and value in _BAND_NAMES:
            return (0, _BAND_NAMES.index(value), value)
        return (1, 0, value)

    return key


def _normalise_group_values(attr: str, values: Sequence[Any], n: int) -> list[str | None]:
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
    y, p = _labels_probs(labels, p_female)
    pred = predict(p, threshold)
    out: dict[str, dict[str, Any]] = {}
    for attr, raw in groups.items():
        values = _normalise_group_values(attr, raw, y.size)
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


# --------------------------------------------------------------------------- subjects


def subjects_with_mixed_labels(subjects: Sequence[str], labels: Any) -> list[str]:
    """The subjects (named by ``str``, sorted) whose items carry both labels: they cannot be fused."""
    seen: dict[str, set[int]] = {}
    for subject, label in zip(subjects, _as_labels(labels).tolist(), strict=True):
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
    Returns ``(subject_ids, labels, fused_logits)``; use :func:`sigmoid` for p_female.
    """
    y = _as_labels(labels)
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
    y = _as_labels(labels)
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


def group_offsets(labels: Any, logits: Any, groups: Sequence[str]) -> dict[str, float]:
    """How far each group's logits sit from all of them (e.g. per finger: a thumb reads more
    "male" than a little finger for everyone). Both sides are class-balanced means (the mean of the
    two labels' mean logits), so a group's own label mix does not count as its offset. Groups
    lacking either label are left out."""
    y = _as_labels(labels)
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


# --------------------------------------------------------------------------- calibrated summary


def per_subject_metrics(
    subjects: Sequence[str],
    labels: Any,
    logits: Any,
    temperature_of: Callable[[Any], Any],
    calibration: dict[str, float],
) -> dict[str, Any]:
    """:func:`calibrated_metrics` of each subject's mean logit, as prediction answers for a person:
    its temperature from ``temperature_of(number of items)``, the threshold and abstention level
    of ``calibration``; plus ``n_subjects``."""
    ids, fused_labels, fused_logits = fuse_by_subject(subjects, labels, logits)
    temperature = temperature_of(np.asarray(items_per_subject(subjects, ids)))
    result = calibrated_metrics(
        fused_labels, fused_logits, temperature, calibration["threshold"], calibration["min_confidence"]
    )
    result["n_subjects"] = len(ids)
    return result


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
    y = _as_labels(labels)
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
