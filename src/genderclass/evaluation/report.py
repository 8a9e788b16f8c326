"""A self-contained HTML evaluation report: summary tables, per-group tables, figures
(:mod:`.plots`) and error galleries, with every image inlined."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genderclass.config import LABELS
from genderclass.evaluation import metrics as M
from genderclass.evaluation.groups import normalise_group_values
from genderclass.evaluation.plots import (
    SMALL_GROUP_N,
    error_gallery,
    group_items,
    plot_confusion_matrix,
    plot_coverage,
    plot_group_accuracy,
    plot_reliability,
    plot_roc,
    plot_training_curves,
    require_matplotlib,
)

FIG_DIR = "figures"


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int | np.integer):
        return str(int(x))
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(xf):
        return "—"
    return f"{xf:.{digits}f}"


def _fmt_ci(value: Any, ci: Sequence[float] | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if not ci:
        return _fmt(value, digits)
    return f"{_fmt(value, digits)} [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0;
       background: #f6f7f9; color: #222; line-height: 1.45; }
main { max-width: 1050px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #e3e6ea; padding-bottom: 4px; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d9dde2; padding: 4px 10px; text-align: right; }
th { background: #eef1f5; } td:first-child, th:first-child { text-align: left; }
tr.small td { color: #888; } tr.chosen td { background: #fff6d6; }
img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; margin: 6px 0; }
.note { background: #fff8e6; border-left: 4px solid #f0b429; padding: 10px 14px; }
.muted { color: #666; font-size: 0.9em; }
"""


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] | None = None) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{html.escape(row_classes[i])}"' if row_classes and row_classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _summary_rows(m: dict[str, Any]) -> list[list[str]]:
    rows = [
        ["n", _fmt(m.get("n"))],
        ["accuracy (95% CI)", _fmt_ci(m.get("accuracy"), m.get("accuracy_ci95"))],
        ["balanced accuracy (95% CI)", _fmt_ci(m.get("balanced_accuracy"), m.get("balanced_accuracy_ci95"))],
        ["ROC-AUC", _fmt(m.get("roc_auc"))],
        ["ECE (top-label)", _fmt(m.get("ece"))],
        ["Brier score", _fmt(m.get("brier"))],
    ]
    for key, name in (("nll", "log loss"), ("threshold", "decision threshold"), ("temperature", "temperature")):
        if m.get(key) is not None:
            rows.append([name, _fmt(m[key])])
    if m.get("min_confidence") is not None:
        rows.append(["min confidence (else 'uncertain')", _fmt(m["min_confidence"])])
    return rows


def _per_class_rows(m: dict[str, Any]) -> list[list[str]]:
    pc = m.get("per_class") or {}
    return [
        [name, _fmt(v.get("precision")), _fmt(v.get("recall")), _fmt(v.get("f1")), _fmt(v.get("support"))]
        for name, v in pc.items()
    ]


def _summary_table(m: dict[str, Any]) -> str:
    """The headline numbers of ``m`` as a two-column table."""
    return _table(["metric", "value"], _summary_rows(m))


def _per_class_table(m: dict[str, Any]) -> str:
    """Precision, recall, F1 and support of each class in ``m``."""
    return _table(["class", "precision", "recall", "F1", "support"], _per_class_rows(m))


def _calibration_row(name: str, y: np.ndarray, p: np.ndarray) -> list[str]:
    """ECE, Brier score and log loss of the probabilities ``p``."""
    return [name, _fmt(M.expected_calibration_error(y, p)), _fmt(M.brier_score(y, p)), _fmt(M.log_loss(y, p))]


def _safe_name(text: str) -> str:
    """``text`` as a file name: anything but letters, digits, ``-`` and ``_`` becomes ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def _cm_table(cm: Sequence[Sequence[int]]) -> str:
    rows = [[f"true {LABELS[i]}"] + [str(int(c)) for c in cm[i]] for i in range(len(cm))]
    return _table(["", f"pred {LABELS[0]}", f"pred {LABELS[1]}"], rows)


def _group_table(group: dict[str, Any]) -> str:
    rows, classes = [], []
    for name, v in group_items(group):
        rec, rci = v.get("recall") or {}, v.get("recall_ci95") or {}
        rows.append(
            [
                name,
                _fmt(v.get("n")),
                _fmt_ci(v.get("accuracy"), v.get("ci95")),
                _fmt_ci(v.get("balanced_accuracy"), v.get("balanced_accuracy_ci95")),
                _fmt_ci(rec.get(LABELS[0]), rci.get(LABELS[0])),
                _fmt_ci(rec.get(LABELS[1]), rci.get(LABELS[1])),
            ]
        )
        classes.append("small" if (v.get("n") or 0) < SMALL_GROUP_N else "")
    header = ["group", "n", "accuracy [95% CI]", "balanced acc. [95% CI]", "male recall [CI]", "female recall [CI]"]
    return _table(header, rows, classes)


def _get_thumb(thumbnails: Callable[[int], Any] | Sequence[Any] | None, i: int) -> Any:
    if thumbnails is None:
        return None
    try:
        return thumbnails(i) if callable(thumbnails) else thumbnails[i]
    except (OSError, ValueError, IndexError, KeyError, TypeError, RuntimeError):  # unreadable image: skip it
        return None


def _gallery_section(
    heading: str,
    indices: list[int],
    y: np.ndarray,
    p: np.ndarray,
    thumbnails: Any,
    item_names: Sequence[str] | None,
    png: Path,
) -> str:
    parts = [f"<h3>{html.escape(heading)}</h3>"]
    if not indices:
        parts.append('<p class="muted">No errors.</p>')
        return "\n".join(parts)
    rows = []
    for i in indices:  # every item here is an error: the model said the other label
        name = item_names[i] if item_names is not None else ""
        rows.append([str(i), name, LABELS[int(y[i])], LABELS[1 - int(y[i])], _fmt(p[i])])
    if thumbnails is not None:
        items = []
        for i in indices:
            caption = f"#{i} true {LABELS[int(y[i])]}, said {LABELS[1 - int(y[i])]}\np_female={p[i]:.2f}"
            items.append((_get_thumb(thumbnails, i), caption))
        error_gallery(items, png)
        parts.append(_img_tag(png, heading))
    parts.append(_table(["index", "item", "true", "predicted", "p_female"], rows))
    return "\n".join(parts)


def _gallery_groups(values: list[str | None], y: np.ndarray, pred: np.ndarray, limit: int) -> list[str]:
    """Up to ``limit`` groups that contain errors, lowest accuracy first (ties: larger group first)."""
    stats = []
    for name in sorted({v for v in values if v is not None}):
        mask = np.array([v == name for v in values])
        errors = int((pred[mask] != y[mask]).sum())
        if errors:
            stats.append((1.0 - errors / int(mask.sum()), -int(mask.sum()), name))
    return [name for _, _, name in sorted(stats)[:limit]]


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


def write_report(
    out_dir: str | Path,
    metrics: dict[str, Any],
    labels: Any,
    p_female: Any,
    p_uncalibrated: Any = None,
    thumbnails: Callable[[int], Any] | Sequence[Any] | None = None,
    training_metrics_csv: str | Path | None = None,
    title: str = "genderclass evaluation",
    group_of: dict[str, Sequence[Any]] | None = None,
    item_names: Sequence[str] | None = None,
    max_errors: int = 18,
    max_group_galleries: int = 3,
) -> Path:
    """Write PNG figures (under ``out_dir/figures``) and a self-contained ``out_dir/report.html``.

    ``metrics`` is the evaluation dict (``binary_metrics`` keys, optionally ``coverage_curve``,
    ``groups`` from ``group_metrics``, ``per_subject``, ``temperature``, ``min_confidence``);
    missing headline numbers are computed from ``labels``/``p_female``. ``p_female`` are the
    calibrated probabilities; ``p_uncalibrated`` enables the reliability diagram. ``thumbnails``
    (callable or list, index -> uint8 image) enables error galleries; ``group_of`` maps an
    attribute to per-item values (ages for ``"age"``) to add galleries for up to
    ``max_group_galleries`` worst groups per attribute. Images are embedded as base64 data URIs.
    """
    require_matplotlib()  # fails with the install hint before anything is written
    out = Path(out_dir)
    figs = out / FIG_DIR
    figs.mkdir(parents=True, exist_ok=True)
    y, p = M.labels_and_probs(labels, p_female)
    threshold = 0.5 if metrics.get("threshold") is None else float(metrics["threshold"])
    computed = M.binary_metrics(y, p, threshold)
    m = {**computed, **{k: v for k, v in metrics.items() if v is not None}}
    pred = M.predict(p, threshold)

    body: list[str] = [f"<h1>{html.escape(title)}</h1>"]
    body.append(
        f'<p class="muted">{int(y.size)} items; female is the positive class; '
        f"an item is called female when p_female &ge; {html.escape(_fmt(threshold))}.</p>"
    )
    body += _provenance(metrics)
    body += _not_scored(metrics)

    body.append("<h2>Summary</h2>")
    body.append(_summary_table(m))
    body.append(_per_class_table(m))

    body.append("<h2>Confusion matrix</h2>")
    cm = m.get("confusion_matrix") or computed["confusion_matrix"]
    body.append(_img_tag(plot_confusion_matrix(cm, figs / "confusion_matrix.png"), "confusion matrix"))
    body.append(_cm_table(cm))

    body.append("<h2>ROC curve</h2>")
    body.append(_img_tag(plot_roc(y, p, figs / "roc.png"), "ROC curve"))

    if training_metrics_csv is not None and Path(training_metrics_csv).is_file():
        body.append("<h2>Training curves</h2>")
        png = plot_training_curves(training_metrics_csv, figs / "training_curves.png")
        body.append(_img_tag(png, "training curves"))

    if p_uncalibrated is not None:
        p_uncal = M._as_probs(p_uncalibrated, y.size)
        body.append("<h2>Calibration</h2>")
        body.append(_img_tag(plot_reliability(y, p_uncal, p, figs / "reliability.png"), "reliability diagram"))
        rows = [_calibration_row("uncalibrated", y, p_uncal), _calibration_row("calibrated", y, p)]
        body.append(_table(["", "ECE", "Brier", "log loss"], rows))

    curve = m.get("coverage_curve")
    if curve:
        body.append("<h2>Accuracy vs coverage</h2>")
        body.append(
            '<p class="muted">Items whose confidence (max(p, 1-p) at threshold 0.5; in general 0.5 at the '
            "decision threshold, rising to 1 on either side) is below the minimum are answered "
            "&ldquo;uncertain&rdquo;. Coverage is the fraction still answered.</p>"
        )
        body.append(_img_tag(plot_coverage(curve, figs / "coverage.png"), "accuracy vs coverage"))
        chosen = m.get("min_confidence")
        rows, classes = [], []
        for c in curve:
            rows.append(
                [
                    _fmt(c.get("min_confidence"), 2),
                    _fmt(c.get("coverage")),
                    _fmt(c.get("accuracy")),
                    _fmt(c.get("balanced_accuracy")),
                    _fmt(c.get("n")),
                ]
            )
            is_chosen = chosen is not None and abs(float(c.get("min_confidence", -1)) - float(chosen)) < 1e-9
            classes.append("chosen" if is_chosen else "")
        body.append(
            _table(["min confidence", "coverage", "accuracy", "balanced accuracy", "n answered"], rows, classes)
        )

    groups = m.get("groups")
    if groups:
        body.append("<h2>Results by group</h2>")
        body.append(
            f'<p class="muted">Wilson 95% confidence intervals. Grey rows/bars: fewer than {SMALL_GROUP_N} '
            "items &mdash; too few for firm conclusions. Balanced accuracy averages the recalls of the "
            "classes present in the group.</p>"
        )
        for attr, group in groups.items():
            if not isinstance(group, dict):
                continue
            body.append(f"<h3>{html.escape(str(attr))}</h3>")
            summary = group.get("_summary") or {}
            if summary.get("worst_group") is not None:
                body.append(
                    "<p>Worst group (n &ge; {mn}): <b>{w}</b> at accuracy {a}; largest gap between groups: {g}.</p>".format(
                        mn=html.escape(_fmt(summary.get("min_n"))),
                        w=html.escape(str(summary["worst_group"])),
                        a=html.escape(_fmt(summary.get("worst_accuracy"))),
                        g=html.escape(_fmt(summary.get("largest_gap"))),
                    )
                )
            body.append(_group_table(group))
            png = plot_group_accuracy(group, figs / f"group_{_safe_name(str(attr))}.png", title=f"Accuracy by {attr}")
            body.append(_img_tag(png, f"accuracy by {attr}"))

    per_subject = m.get("per_subject")
    if isinstance(per_subject, dict) and per_subject:
        body.append("<h2>Per-subject results</h2>")
        body.append('<p class="muted">Predictions fused per subject (mean logit) before scoring.</p>')
        body.append(_summary_table(per_subject))
        if per_subject.get("per_class"):
            body.append(_per_class_table(per_subject))
        if per_subject.get("confusion_matrix"):
            body.append(_cm_table(per_subject["confusion_matrix"]))
    by_prints = m.get("per_subject_by_prints")
    if isinstance(by_prints, list) and by_prints:
        body.append("<h3>Prints per person</h3>")
        body.append(
            '<p class="muted">Each person scored from k of their prints (mean logit of k prints drawn at random, '
            "20 draws per person), calibrated for k prints.</p>"
        )
        rows = [
            [str(r.get("prints")), str(r.get("n_subjects")), _fmt(r.get("balanced_accuracy")),
             _fmt(r.get("roc_auc")), _fmt(r.get("ece"))]
            for r in by_prints
        ]  # fmt: skip
        body.append(_table(["prints given", "people", "balanced accuracy", "ROC-AUC", "ECE"], rows))

    body.append("<h2>Most confident errors</h2>")
    body.append(
        f'<p class="muted">Wrong answers at the decision threshold (female when p_female &ge; '
        f"{html.escape(_fmt(threshold))}), the most confident first.</p>"
    )
    if thumbnails is None:
        body.append('<p class="muted">No thumbnails supplied; listing indices only.</p>')
    idx = M.most_confident_errors(y, p, threshold, max_errors)
    body.append(_gallery_section("All items", idx, y, p, thumbnails, item_names, figs / "errors_all.png"))
    for attr, raw in (group_of or {}).items():
        values = normalise_group_values(attr, list(raw), y.size)
        for name in _gallery_groups(values, y, pred, max_group_galleries):
            sel = np.array([v == name for v in values])
            local = M.most_confident_errors(y[sel], p[sel], threshold, max_errors)
            global_idx = [int(i) for i in np.flatnonzero(sel)[local]] if local else []
            png = figs / f"errors_{_safe_name(f'{attr}_{name}')}.png"
            body.append(_gallery_section(f"{attr} = {name}", global_idx, y, p, thumbnails, item_names, png))

    body.append("<h2>Responsible use</h2>")
    body.append(
        '<p class="note">Binary male/female labels are a simplification of gender: they do not capture '
        "non-binary or transgender identities, and a face or fingerprint does not determine anyone&rsquo;s "
        "gender. Accuracy differs between groups (see above). This model and report are for research and "
        "evaluation only &mdash; not for surveillance, and not for making decisions about individuals.</p>"
    )

    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
