"""A self-contained HTML evaluation report: summary tables, per-group tables, figures
(:mod:`.plots`) and error galleries, with every image inlined."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """Item ``i``'s thumbnail; None if there are none or it cannot be read."""
    if thumbnails is None:
        return None
    try:
        return thumbnails(i) if callable(thumbnails) else thumbnails[i]
    except (OSError, ValueError, IndexError, KeyError, TypeError, RuntimeError):  # unreadable image: skip it
        return None


@dataclass(frozen=True)
class _ErrorItems:
    """The scored items error galleries are drawn from, and how many errors one gallery shows."""

    y: np.ndarray
    p: np.ndarray
    threshold: float
    thumbnails: Callable[[int], Any] | Sequence[Any] | None
    item_names: Sequence[str] | None
    figs: Path
    max_errors: int


def _gallery_section(items: _ErrorItems, heading: str, indices: list[int], png: Path) -> str:
    """One gallery: a heading, the thumbnails of the errors ``indices`` (if any) and their table."""
    parts = [f"<h3>{html.escape(heading)}</h3>"]
    if not indices:
        parts.append('<p class="muted">No errors.</p>')
        return "\n".join(parts)
    y, p = items.y, items.p
    rows, captions = [], []
    for i in indices:  # every item here is an error: the model said the other label
        true, said = LABELS[int(y[i])], LABELS[1 - int(y[i])]
        name = items.item_names[i] if items.item_names is not None else ""
        rows.append([str(i), name, true, said, _fmt(p[i])])
        captions.append((i, f"#{i} true {true}, said {said}\np_female={p[i]:.2f}"))
    if items.thumbnails is not None:
        error_gallery([(_get_thumb(items.thumbnails, i), caption) for i, caption in captions], png)
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


def _attribute_galleries(items: _ErrorItems, attr: str, raw: Sequence[Any], pred: np.ndarray, limit: int) -> list[str]:
    """Galleries of the errors in up to ``limit`` worst groups of one attribute."""
    y, p = items.y, items.p
    values = normalise_group_values(attr, list(raw), y.size)
    parts = []
    for name in _gallery_groups(values, y, pred, limit):
        sel = np.array([v == name for v in values])
        local = M.most_confident_errors(y[sel], p[sel], items.threshold, items.max_errors)
        global_idx = [int(i) for i in np.flatnonzero(sel)[local]] if local else []
        png = items.figs / f"errors_{_safe_name(f'{attr}_{name}')}.png"
        parts.append(_gallery_section(items, f"{attr} = {name}", global_idx, png))
    return parts


def _errors_section(
    items: _ErrorItems, group_of: dict[str, Sequence[Any]] | None, max_group_galleries: int
) -> list[str]:
    """The most confident errors overall, then per worst group of each attribute in ``group_of``."""
    parts = [
        "<h2>Most confident errors</h2>",
        f'<p class="muted">Wrong answers at the decision threshold (female when p_female &ge; '
        f"{html.escape(_fmt(items.threshold))}), the most confident first.</p>",
    ]
    if items.thumbnails is None:
        parts.append('<p class="muted">No thumbnails supplied; listing indices only.</p>')
    idx = M.most_confident_errors(items.y, items.p, items.threshold, items.max_errors)
    parts.append(_gallery_section(items, "All items", idx, items.figs / "errors_all.png"))
    pred = M.predict(items.p, items.threshold)
    for attr, raw in (group_of or {}).items():
        parts += _attribute_galleries(items, attr, raw, pred, max_group_galleries)
    return parts


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


def _intro(title: str, n: int, threshold: float, metrics: dict[str, Any]) -> list[str]:
    """The title, how many items were scored and at which threshold, what was measured and left out."""
    return [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">{n} items; female is the positive class; '
        f"an item is called female when p_female &ge; {html.escape(_fmt(threshold))}.</p>",
        *_provenance(metrics),
        *_not_scored(metrics),
    ]


def _summary_section(m: dict[str, Any]) -> list[str]:
    """The headline numbers and the per-class scores."""
    return ["<h2>Summary</h2>", _summary_table(m), _per_class_table(m)]


def _confusion_section(cm: Sequence[Sequence[int]], figs: Path) -> list[str]:
    """The confusion matrix as a figure and as a table."""
    png = plot_confusion_matrix(cm, figs / "confusion_matrix.png")
    return ["<h2>Confusion matrix</h2>", _img_tag(png, "confusion matrix"), _cm_table(cm)]


def _roc_section(y: np.ndarray, p: np.ndarray, figs: Path) -> list[str]:
    """The ROC curve."""
    return ["<h2>ROC curve</h2>", _img_tag(plot_roc(y, p, figs / "roc.png"), "ROC curve")]


def _training_section(training_metrics_csv: str | Path | None, figs: Path) -> list[str]:
    """The training curves, when the run's metrics CSV is there."""
    if training_metrics_csv is None or not Path(training_metrics_csv).is_file():
        return []
    png = plot_training_curves(training_metrics_csv, figs / "training_curves.png")
    return ["<h2>Training curves</h2>", _img_tag(png, "training curves")]


def _calibration_section(y: np.ndarray, p: np.ndarray, p_uncalibrated: Any, figs: Path) -> list[str]:
    """The reliability diagram and the calibration scores before and after, given uncalibrated ``p``."""
    if p_uncalibrated is None:
        return []
    p_uncal = M._as_probs(p_uncalibrated, y.size)
    png = plot_reliability(y, p_uncal, p, figs / "reliability.png")
    rows = [_calibration_row("uncalibrated", y, p_uncal), _calibration_row("calibrated", y, p)]
    return [
        "<h2>Calibration</h2>",
        _img_tag(png, "reliability diagram"),
        _table(["", "ECE", "Brier", "log loss"], rows),
    ]


def _coverage_table(curve: Sequence[dict[str, Any]], chosen: Any) -> str:
    """One row per minimum confidence on the coverage curve; the ``chosen`` one highlighted."""
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
    return _table(["min confidence", "coverage", "accuracy", "balanced accuracy", "n answered"], rows, classes)


def _coverage_section(curve: Sequence[dict[str, Any]] | None, chosen: Any, figs: Path) -> list[str]:
    """Accuracy against the fraction answered as the minimum confidence rises, if there is a curve."""
    if not curve:
        return []
    return [
        "<h2>Accuracy vs coverage</h2>",
        '<p class="muted">Items whose confidence (max(p, 1-p) at threshold 0.5; in general 0.5 at the '
        "decision threshold, rising to 1 on either side) is below the minimum are answered "
        "&ldquo;uncertain&rdquo;. Coverage is the fraction still answered.</p>",
        _img_tag(plot_coverage(curve, figs / "coverage.png"), "accuracy vs coverage"),
        _coverage_table(curve, chosen),
    ]


def _worst_group(summary: dict[str, Any]) -> list[str]:
    """The sentence naming an attribute's worst group and the largest gap, if there is one."""
    if summary.get("worst_group") is None:
        return []
    return [
        "<p>Worst group (n &ge; {mn}): <b>{w}</b> at accuracy {a}; largest gap between groups: {g}.</p>".format(
            mn=html.escape(_fmt(summary.get("min_n"))),
            w=html.escape(str(summary["worst_group"])),
            a=html.escape(_fmt(summary.get("worst_accuracy"))),
            g=html.escape(_fmt(summary.get("largest_gap"))),
        )
    ]


def _attribute_section(attr: str, group: dict[str, Any], figs: Path) -> list[str]:
    """One attribute's groups: the worst one, a table and a bar chart."""
    png = figs / f"group_{_safe_name(str(attr))}.png"
    return [
        f"<h3>{html.escape(str(attr))}</h3>",
        *_worst_group(group.get("_summary") or {}),
        _group_table(group),
        _img_tag(plot_group_accuracy(group, png, title=f"Accuracy by {attr}"), f"accuracy by {attr}"),
    ]


def _groups_section(groups: dict[str, Any] | None, figs: Path) -> list[str]:
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


def _per_subject_section(per_subject: Any) -> list[str]:
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


def _prints_section(by_prints: Any) -> list[str]:
    """The per-person scores by the number of prints given, if they were measured."""
    if not (isinstance(by_prints, list) and by_prints):
        return []
    rows = [
        [str(r.get("prints")), str(r.get("n_subjects")), _fmt(r.get("balanced_accuracy")),
         _fmt(r.get("roc_auc")), _fmt(r.get("ece"))]
        for r in by_prints
    ]  # fmt: skip
    return [
        "<h3>Prints per person</h3>",
        '<p class="muted">Each person scored from k of their prints (mean logit of k prints drawn at random, '
        "20 draws per person), calibrated for k prints.</p>",
        _table(["prints given", "people", "balanced accuracy", "ROC-AUC", "ECE"], rows),
    ]


_RESPONSIBLE_USE = [
    "<h2>Responsible use</h2>",
    '<p class="note">Binary male/female labels are a simplification of gender: they do not capture '
    "non-binary or transgender identities, and a face or fingerprint does not determine anyone&rsquo;s "
    "gender. Accuracy differs between groups (see above). This model and report are for research and "
    "evaluation only &mdash; not for surveillance, and not for making decisions about individuals.</p>",
]


def _page(title: str, body: Sequence[str]) -> str:
    """The whole HTML document around the ``body`` parts."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


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
    errors = _ErrorItems(y, p, threshold, thumbnails, item_names, figs, max_errors)
    body = [
        *_intro(title, int(y.size), threshold, metrics),
        *_summary_section(m),
        *_confusion_section(m.get("confusion_matrix") or computed["confusion_matrix"], figs),
        *_roc_section(y, p, figs),
        *_training_section(training_metrics_csv, figs),
        *_calibration_section(y, p, p_uncalibrated, figs),
        *_coverage_section(m.get("coverage_curve"), m.get("min_confidence"), figs),
        *_groups_section(m.get("groups"), figs),
        *_per_subject_section(m.get("per_subject")),
        *_prints_section(m.get("per_subject_by_prints")),
        *_errors_section(errors, group_of, max_group_galleries),
        *_RESPONSIBLE_USE,
    ]
    path = out / "report.html"
    path.write_text(_page(title, body), encoding="utf-8")
    return path
