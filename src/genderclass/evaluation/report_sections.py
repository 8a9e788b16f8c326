"""The evaluation report's sections, each built from the metrics dict (and a figure from
:mod:`.plots` where it has one) as a list of HTML parts: intro, summary, confusion matrix, ROC,
training curves, calibration, coverage, groups, per subject, prints per person, responsible use."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genderclass.config import LABELS
from genderclass.evaluation import metrics as M
from genderclass.evaluation.plots import (
    SMALL_GROUP_N,
    group_items,
    plot_confusion_matrix,
    plot_coverage,
    plot_group_accuracy,
    plot_reliability,
    plot_roc,
    plot_training_curves,
)
from genderclass.evaluation.report_html import fmt, fmt_ci, img_tag, safe_name, table


def _summary_rows(m: dict[str, Any]) -> list[list[str]]:
    """The headline numbers of ``m``, with the threshold, temperature and minimum confidence if set."""
    rows = [
        ["n", fmt(m.get("n"))],
        ["accuracy (95% CI)", fmt_ci(m.get("accuracy"), m.get("accuracy_ci95"))],
        ["balanced accuracy (95% CI)", fmt_ci(m.get("balanced_accuracy"), m.get("balanced_accuracy_ci95"))],
        ["ROC-AUC", fmt(m.get("roc_auc"))],
        ["ECE (top-label)", fmt(m.get("ece"))],
        ["Brier score", fmt(m.get("brier"))],
    ]
    for key, name in (("nll", "log loss"), ("threshold", "decision threshold"), ("temperature", "temperature")):
        if m.get(key) is not None:
            rows.append([name, fmt(m[key])])
    if m.get("min_confidence") is not None:
        rows.append(["min confidence (else 'uncertain')", fmt(m["min_confidence"])])
    return rows


def _per_class_rows(m: dict[str, Any]) -> list[list[str]]:
    """One row per class: precision, recall, F1 and support."""
    pc = m.get("per_class") or {}
    return [
        [name, fmt(v.get("precision")), fmt(v.get("recall")), fmt(v.get("f1")), fmt(v.get("support"))]
        for name, v in pc.items()
    ]


def _summary_table(m: dict[str, Any]) -> str:
    """The headline numbers of ``m`` as a two-column table."""
    return table(["metric", "value"], _summary_rows(m))


def _per_class_table(m: dict[str, Any]) -> str:
    """Precision, recall, F1 and support of each class in ``m``."""
    return table(["class", "precision", "recall", "F1", "support"], _per_class_rows(m))


def _calibration_row(name: str, y: np.ndarray, p: np.ndarray) -> list[str]:
    """ECE, Brier score and log loss of the probabilities ``p``."""
    return [name, fmt(M.expected_calibration_error(y, p)), fmt(M.brier_score(y, p)), fmt(M.log_loss(y, p))]


def _cm_table(cm: Sequence[Sequence[int]]) -> str:
    """The confusion matrix as a table, true labels down, predicted across."""
    rows = [[f"true {LABELS[i]}"] + [str(int(c)) for c in cm[i]] for i in range(len(cm))]
    return table(["", f"pred {LABELS[0]}", f"pred {LABELS[1]}"], rows)


def _group_table(group: dict[str, Any]) -> str:
    """One row per group of an attribute with its accuracies and recalls; small groups greyed."""
    rows, classes = [], []
    for name, v in group_items(group):
        rec, rci = v.get("recall") or {}, v.get("recall_ci95") or {}
        rows.append(
            [
                name,
                fmt(v.get("n")),
                fmt_ci(v.get("accuracy"), v.get("ci95")),
                fmt_ci(v.get("balanced_accuracy"), v.get("balanced_accuracy_ci95")),
                fmt_ci(rec.get(LABELS[0]), rci.get(LABELS[0])),
                fmt_ci(rec.get(LABELS[1]), rci.get(LABELS[1])),
            ]
        )
        classes.append("small" if (v.get("n") or 0) < SMALL_GROUP_N else "")
    header = ["group", "n", "accuracy [95% CI]", "balanced acc. [95% CI]", "male recall [CI]", "female recall [CI]"]
    return table(header, rows, classes)


def _provenance(metrics: dict[str, Any]) -> list[str]:
    """What was measured: the model file, the data and the split it was limited to, the crop mode."""
    model, data = metrics.get("model") or {}, metrics.get("data") or {}
    parts = [f"{label}: {html.escape(str(value))}" for label, value in (
        ("model", model.get("path")),
        ("data", data.get("data")),
        ("format", data.get("format")),
        ("files", data.get("files")),
        ("crop", metrics.get("crop_mode")),
    ) if value]  # fmt: skip
    return [f'<p class="muted">{" &middot; ".join(parts)}</p>'] if parts else []


def _not_scored(metrics: dict[str, Any], shown: int = 5) -> list[str]:
    """A warning naming the files left out of every number (unreadable, or no face found)."""
    parts = []
    for key, what in (("unreadable", "unreadable"), ("no_face", "without a detected face")):
        files = metrics.get(key) or {}
        if files:
            names = ", ".join(html.escape(Path(f).name) for f in list(files)[:shown])
            more = f" and {len(files) - shown} more" if len(files) > shown else ""
            parts.append(f"{len(files)} {what} ({names}{more})")
    if not parts:
        return []
    return [f'<p class="note">Not scored, so in none of the numbers below: {"; ".join(parts)}.</p>']


def intro(title: str, n: int, threshold: float, metrics: dict[str, Any]) -> list[str]:
    """The title, how many items were scored and at which threshold, what was measured and left out."""
    return [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">{n} items; female is the positive class; '
        f"an item is called female when p_female &ge; {html.escape(fmt(threshold))}.</p>",
        *_provenance(metrics),
        *_not_scored(metrics),
    ]


def summary_section(m: dict[str, Any]) -> list[str]:
    """The headline numbers and the per-class scores."""
    return ["<h2>Summary</h2>", _summary_table(m), _per_class_table(m)]


def confusion_section(cm: Sequence[Sequence[int]], figs: Path) -> list[str]:
    """The confusion matrix as a figure and as a table."""
    png = plot_confusion_matrix(cm, figs / "confusion_matrix.png")
    return ["<h2>Confusion matrix</h2>", img_tag(png, "confusion matrix"), _cm_table(cm)]


def roc_section(y: np.ndarray, p: np.ndarray, figs: Path) -> list[str]:
    """The ROC curve."""
    return ["<h2>ROC curve</h2>", img_tag(plot_roc(y, p, figs / "roc.png"), "ROC curve")]


def training_section(training_metrics_csv: str | Path | None, figs: Path) -> list[str]:
    """The training curves, when the run's metrics CSV is there."""
    if training_metrics_csv is None or not Path(training_metrics_csv).is_file():
        return []
    png = plot_training_curves(training_metrics_csv, figs / "training_curves.png")
    return ["<h2>Training curves</h2>", img_tag(png, "training curves")]


def calibration_section(y: np.ndarray, p: np.ndarray, p_uncalibrated: Any, figs: Path) -> list[str]:
    """The reliability diagram and the calibration scores before and after, given uncalibrated ``p``."""
    if p_uncalibrated is None:
        return []
    p_uncal = M._as_probs(p_uncalibrated, y.size)
    png = plot_reliability(y, p_uncal, p, figs / "reliability.png")
    rows = [_calibration_row("uncalibrated", y, p_uncal), _calibration_row("calibrated", y, p)]
    return [
        "<h2>Calibration</h2>",
        img_tag(png, "reliability diagram"),
        table(["", "ECE", "Brier", "log loss"], rows),
    ]


def _coverage_table(curve: Sequence[dict[str, Any]], chosen: Any) -> str:
    """One row per minimum confidence on the coverage curve; the ``chosen`` one highlighted."""
    rows, classes = [], []
    for c in curve:
        rows.append(
            [
                fmt(c.get("min_confidence"), 2),
                fmt(c.get("coverage")),
                fmt(c.get("accuracy")),
                fmt(c.get("balanced_accuracy")),
                fmt(c.get("n")),
            ]
        )
        is_chosen = chosen is not None and abs(float(c.get("min_confidence", -1)) - float(chosen)) < 1e-9
        classes.append("chosen" if is_chosen else "")
    return table(["min confidence", "coverage", "accuracy", "balanced accuracy", "n answered"], rows, classes)


def coverage_section(curve: Sequence[dict[str, Any]] | None, chosen: Any, figs: Path) -> list[str]:
    """Accuracy against the fraction answered as the minimum confidence rises, if there is a curve."""
    if not curve:
        return []
    return [
        "<h2>Accuracy vs coverage</h2>",
        '<p class="muted">Items whose confidence (max(p, 1-p) at threshold 0.5; in general 0.5 at the '
        "decision threshold, rising to 1 on either side) is below the minimum are answered "
        "&ldquo;uncertain&rdquo;. Coverage is the fraction still answered.</p>",
        img_tag(plot_coverage(curve, figs / "coverage.png"), "accuracy vs coverage"),
        _coverage_table(curve, chosen),
    ]


def _worst_group(summary: dict[str, Any]) -> list[str]:
    """The sentence naming an attribute's worst group and the largest gap, if there is one."""
    if summary.get("worst_group") is None:
        return []
    return [
        "<p>Worst group (n &ge; {mn}): <b>{w}</b> at accuracy {a}; largest gap between groups: {g}.</p>".format(
            mn=html.escape(fmt(summary.get("min_n"))),
            w=html.escape(str(summary["worst_group"])),
            a=html.escape(fmt(summary.get("worst_accuracy"))),
            g=html.escape(fmt(summary.get("largest_gap"))),
        )
    ]


def _attribute_section(attr: str, group: dict[str, Any], figs: Path) -> list[str]:
    """One attribute's groups: the worst one, a table and a bar chart."""
    png = figs / f"group_{safe_name(str(attr))}.png"
    return [
        f"<h3>{html.escape(str(attr))}</h3>",
        *_worst_group(group.get("_summary") or {}),
        _group_table(group),
        img_tag(plot_group_accuracy(group, png, title=f"Accuracy by {attr}"), f"accuracy by {attr}"),
    ]


def groups_section(groups: dict[str, Any] | None, figs: Path) -> list[str]:
    """Results by group, one subsection per attribute, if groups were measured."""
    if not groups:
        return []
    parts = [
        "<h2>Results by group</h2>",
        f'<p class="muted">Wilson 95% confidence intervals. Grey rows/bars: fewer than {SMALL_GROUP_N} '
        "items &mdash; too few for firm conclusions. Balanced accuracy averages the recalls of the "
        "classes present in the group.</p>",
    ]
    for attr, group in groups.items():
        if isinstance(group, dict):
            parts += _attribute_section(attr, group, figs)
    return parts


def per_subject_section(per_subject: Any) -> list[str]:
    """The numbers for predictions fused per subject, if there are any."""
    if not (isinstance(per_subject, dict) and per_subject):
        return []
    parts = [
        "<h2>Per-subject results</h2>",
        '<p class="muted">Predictions fused per subject (mean logit) before scoring.</p>',
        _summary_table(per_subject),
    ]
    if per_subject.get("per_class"):
        parts.append(_per_class_table(per_subject))
    if per_subject.get("confusion_matrix"):
        parts.append(_cm_table(per_subject["confusion_matrix"]))
    return parts


def prints_section(by_prints: Any) -> list[str]:
    """The per-person scores by the number of prints given, if they were measured."""
    if not (isinstance(by_prints, list) and by_prints):
        return []
    rows = [
        [str(r.get("prints")), str(r.get("n_subjects")), fmt(r.get("balanced_accuracy")),
         fmt(r.get("roc_auc")), fmt(r.get("ece"))]
        for r in by_prints
    ]  # fmt: skip
    return [
        "<h3>Prints per person</h3>",
        '<p class="muted">Each person scored from k of their prints (mean logit of k prints drawn at random, '
        "20 draws per person), calibrated for k prints.</p>",
        table(["prints given", "people", "balanced accuracy", "ROC-AUC", "ECE"], rows),
    ]


RESPONSIBLE_USE = [
    "<h2>Responsible use</h2>",
    '<p class="note">Binary male/female labels are a simplification of gender: they do not capture '
    "non-binary or transgender identities, and a face or fingerprint does not determine anyone&rsquo;s "
    "gender. Accuracy differs between groups (see above). This model and report are for research and "
    "evaluation only &mdash; not for surveillance, and not for making decisions about individuals.</p>",
]
