"""A self-contained HTML evaluation report: summary tables, per-group tables, figures
(:mod:`.plots`) and error galleries, with every image inlined. The sections are built in
:mod:`.report_sections` and :mod:`.report_errors` from the blocks in :mod:`.report_html`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genderclass.evaluation import metrics as M
from genderclass.evaluation.plots import require_matplotlib
from genderclass.evaluation.report_errors import ErrorItems, errors_section
from genderclass.evaluation.report_html import page
from genderclass.evaluation.report_sections import (
    RESPONSIBLE_USE,
    calibration_section,
    confusion_section,
    coverage_section,
    groups_section,
    intro,
    per_subject_section,
    prints_section,
    roc_section,
    summary_section,
    training_section,
)

FIG_DIR = "figures"


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
    errors = ErrorItems(y, p, threshold, thumbnails, item_names, figs, max_errors)
    body = [
        *intro(title, int(y.size), threshold, metrics),
        *summary_section(m),
        *confusion_section(m.get("confusion_matrix") or computed["confusion_matrix"], figs),
        *roc_section(y, p, figs),
        *training_section(training_metrics_csv, figs),
        *calibration_section(y, p, p_uncalibrated, figs),
        *coverage_section(m.get("coverage_curve"), m.get("min_confidence"), figs),
        *groups_section(m.get("groups"), figs),
        *per_subject_section(m.get("per_subject")),
        *prints_section(m.get("per_subject_by_prints")),
        *errors_section(errors, group_of, max_group_galleries),
        *RESPONSIBLE_USE,
    ]
    path = out / "report.html"
    path.write_text(page(title, body), encoding="utf-8")
    return path
