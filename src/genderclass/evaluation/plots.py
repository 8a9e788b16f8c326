"""Evaluation figures (PNG): confusion matrix, ROC, reliability, coverage, accuracy by group,
training curves and image galleries.

matplotlib is imported lazily (inside each function) and used through ``matplotlib.figure.Figure``
with the Agg canvas, so importing this module needs nothing beyond numpy and no global pyplot
backend state is touched.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genderclass.config import LABELS
from genderclass.evaluation import metrics as M
from genderclass.evaluation.groups import SUMMARY_MIN_N

INSTALL_HINT = 'matplotlib is required for evaluation reports: pip install "genderclass[report]"'
SMALL_GROUP_N = SUMMARY_MIN_N  # grey: a group this small has a wide interval


def require_matplotlib():
    """matplotlib's Figure and Agg canvas classes, or a RuntimeError with the install hint."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError(INSTALL_HINT) from exc
    return Figure, FigureCanvasAgg


def _figure(width: float = 5.0, height: float = 4.0):
    """A new Agg-backed Figure (no pyplot)."""
    Figure, FigureCanvasAgg = require_matplotlib()
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


# --------------------------------------------------------------------------- plots


def plot_confusion_matrix(cm: Sequence[Sequence[int]], path: str | Path) -> Path:
    """Heat-map of ``[[TN, FP], [FN, TP]]`` (rows true, columns predicted) with counts and row %."""
    arr = np.asarray(cm, dtype=np.float64)
    fig = _figure(4.2, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    row_sums = arr.sum(axis=1, keepdims=True)
    frac = np.divide(arr, row_sums, out=np.zeros_like(arr), where=row_sums > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            colour = "white" if frac[i, j] > 0.6 else "black"
            ax.text(j, i, f"{int(arr[i, j])}\n{frac[i, j]:.1%}", ha="center", va="center", color=colour)
    ax.set_xticks(range(len(LABELS)), labels=list(LABELS))
    ax.set_yticks(range(len(LABELS)), labels=list(LABELS))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (row %)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, path)


def plot_roc(labels: Any, scores: Any, path: str | Path) -> Path:
    """ROC curve with the chance diagonal and the AUC in the legend."""
    fig = _figure(4.5, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    try:
        fpr, tpr, _ = M.roc_curve(labels, scores)
        auc = M.roc_auc(labels, scores)
        ax.plot(fpr, tpr, lw=2, label=f"model (AUC = {auc:.3f})")
    except ValueError:
        ax.text(0.5, 0.5, "ROC undefined (one class only)", ha="center", va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (male called female)")
    ax.set_ylabel("true positive rate (female recall)")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_reliability(labels: Any, p_uncal: Any, p_cal: Any, path: str | Path, n_bins: int = M.ECE_BINS) -> Path:
    """Reliability diagram (top-label confidence vs accuracy) before and/or after calibration."""
    fig = _figure(4.8, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0.5, 1], [0.5, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    for name, probs, marker in (("uncalibrated", p_uncal, "o"), ("calibrated", p_cal, "s")):
        if probs is None:
            continue
        bins = [b for b in M.reliability_bins(labels, probs, n_bins) if b["count"]]
        if not bins:
            continue
        ece = M.expected_calibration_error(labels, probs, n_bins)
        ax.plot(
            [b["mean_confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker=marker,
            lw=1.5,
            label=f"{name} (ECE = {ece:.3f})",
        )
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("confidence max(p, 1-p)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_coverage(curve: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Accuracy of answered items versus coverage, one point per minimum confidence."""
    fig = _figure(4.8, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    pts = [c for c in curve if c.get("accuracy") is not None]
    if pts:
        cov = [c["coverage"] for c in pts]
        acc = [c["accuracy"] for c in pts]
        ax.plot(cov, acc, marker="o", lw=1.5)
        for c in pts:
            ax.annotate(
                f"{c['min_confidence']:.2f}",
                (c["coverage"], c["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("coverage (fraction answered)")
    ax.set_ylabel("accuracy on answered items")
    ax.set_title("Accuracy vs coverage (labels: min confidence)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def group_items(group: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, v) for k, v in group.items() if not k.startswith("_") and isinstance(v, dict)]


def plot_group_accuracy(group: dict[str, Any], path: str | Path, title: str = "Accuracy by group") -> Path:
    """Bar chart of per-group accuracy with Wilson 95% CI error bars (``_summary`` is ignored)."""
    items = [(k, v) for k, v in group_items(group) if v.get("accuracy") is not None]
    fig = _figure(max(4.5, 0.55 * len(items) + 2.0), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    if items:
        names = [k for k, _ in items]
        acc = np.array([v["accuracy"] for _, v in items])
        lo = np.array([v["ci95"][0] if v.get("ci95") else a for (_, v), a in zip(items, acc, strict=True)])
        hi = np.array([v["ci95"][1] if v.get("ci95") else a for (_, v), a in zip(items, acc, strict=True)])
        x = np.arange(len(items))
        yerr = np.vstack([np.clip(acc - lo, 0, None), np.clip(hi - acc, 0, None)])
        colours = ["#4c72b0" if v["n"] >= SMALL_GROUP_N else "#b0b0b0" for _, v in items]
        ax.bar(x, acc, yerr=yerr, capsize=3, color=colours)
        for xi, (_, v) in zip(x, items, strict=True):
            ax.text(xi, 0.02, f"n={v['n']}", ha="center", va="bottom", fontsize=7, rotation=90, color="#222")
        # group names are data (a CSV's column): "$...$" in one is text, not mathtext (a bad one raised)
        ax.set_xticks(x, labels=names, rotation=45, ha="right", fontsize=8, parse_math=False)
    else:
        ax.text(0.5, 0.5, "no groups", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (95% Wilson CI)")
    ax.set_title(title, parse_math=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _read_metrics_csv(path: str | Path) -> tuple[list[float], dict[str, list[float]]]:
    """Per-epoch means of every numeric column of a Lightning CSVLogger ``metrics.csv``.

    Rows without an epoch (the learning rate, logged as an epoch starts) count for the next epoch row.
    """
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return [], {}
    has_epoch = "epoch" in rows[0]
    per_epoch: dict[float, dict[str, list[float]]] = {}
    pending: list[dict[str, str]] = []
    for i, row in enumerate(rows):
        try:
            epoch = float(row["epoch"]) if has_epoch and row.get("epoch") not in (None, "") else None
        except ValueError:
            epoch = None
        if epoch is None:
            if has_epoch:
                pending.append(row)
                continue
            epoch = float(i)
        bucket = per_epoch.setdefault(epoch, {})
        for key, val in (item for earlier in (*pending, row) for item in earlier.items()):
            if key in (None, "epoch", "step") or val in (None, ""):
                continue
            try:
                num = float(val)
            except ValueError:
                continue
            if math.isfinite(num):
                bucket.setdefault(key, []).append(num)
        pending = []
    epochs = sorted(per_epoch)
    columns = sorted({k for b in per_epoch.values() for k in b})
    series = {
        col: [float(np.mean(per_epoch[e][col])) if col in per_epoch[e] else float("nan") for e in epochs]
        for col in columns
    }
    return epochs, series


def plot_training_curves(metrics_csv_path: str | Path, path: str | Path) -> Path:
    """Loss and accuracy panels (plus learning rate if logged) from a CSVLogger metrics.csv.

    Every numeric column is averaged per epoch; columns containing "loss" go to the loss panel,
    "acc"/"auc" to the accuracy panel, "lr" to a third panel, anything else is ignored.
    """
    epochs, series = _read_metrics_csv(metrics_csv_path)
    loss = {k: v for k, v in series.items() if "loss" in k.lower()}
    acc = {k: v for k, v in series.items() if ("acc" in k.lower() or "auc" in k.lower()) and k not in loss}
    lr = {k: v for k, v in series.items() if k.lower().startswith("lr") and k not in loss and k not in acc}
    panels = [("loss", loss), ("accuracy", acc)] + ([("learning rate", lr)] if lr else [])
    fig = _figure(4.2 * len(panels), 3.8)
    for i, (name, cols) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        plotted = False
        for col, vals in cols.items():
            arr = np.asarray(vals, dtype=np.float64)
            ok = np.isfinite(arr)
            if ok.any():
                ax.plot(np.asarray(epochs)[ok], arr[ok], marker="o", ms=3, lw=1.5, label=col)
                plotted = True
        if plotted:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        if name == "learning rate" and plotted:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _to_display(img: Any) -> tuple[np.ndarray, bool]:
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr, arr.ndim == 2


def error_gallery(items: Sequence[tuple[Any, str]], path: str | Path, ncols: int = 6) -> Path:
    """Grid of thumbnails (uint8 HxWx3 or HxWx1/HxW) with a caption under each."""
    items = list(items)
    if not items:
        fig = _figure(4.0, 1.2)
        fig.text(0.5, 0.5, "no errors to show", ha="center", va="center")
        return _save(fig, path)
    ncols = max(1, min(ncols, len(items)))
    nrows = math.ceil(len(items) / ncols)
    fig = _figure(2.0 * ncols, 2.4 * nrows)
    for i, (img, caption) in enumerate(items):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if img is not None:
            arr, gray = _to_display(img)
            ax.imshow(arr, cmap="gray" if gray else None, vmin=0, vmax=255)
        else:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(str(caption), fontsize=7, wrap=True)
    return _save(fig, path)
