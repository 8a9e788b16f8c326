"""The evaluation report's error galleries: the most confident wrong answers overall and in the
worst groups of each attribute, as thumbnails (when given) and tables."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genderclass.config import LABELS
from genderclass.evaluation import metrics as M
from genderclass.evaluation.groups import normalise_group_values
from genderclass.evaluation.plots import error_gallery
from genderclass.evaluation.report_html import fmt, img_tag, safe_name, table


def _get_thumb(thumbnails: Callable[[int], Any] | Sequence[Any] | None, i: int) -> Any:
    """Item ``i``'s thumbnail; None if there are none or it cannot be read."""
    if thumbnails is None:
        return None
    try:
        return thumbnails(i) if callable(thumbnails) else thumbnails[i]
    except (OSError, ValueError, IndexError, KeyError, TypeError, RuntimeError):  # unreadable image: skip it
        return None


@dataclass(frozen=True)
class ErrorItems:
    """The scored items error galleries are drawn from, and how many errors one gallery shows."""

    y: np.ndarray
    p: np.ndarray
    threshold: float
    thumbnails: Callable[[int], Any] | Sequence[Any] | None
    item_names: Sequence[str] | None
    figs: Path
    max_errors: int


def _gallery_section(items: ErrorItems, heading: str, indices: list[int], png: Path) -> str:
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
        rows.append([str(i), name, true, said, fmt(p[i])])
        captions.append((i, f"#{i} true {true}, said {said}\np_female={p[i]:.2f}"))
    if items.thumbnails is not None:
        error_gallery([(_get_thumb(items.thumbnails, i), caption) for i, caption in captions], png)
        parts.append(img_tag(png, heading))
    parts.append(table(["index", "item", "true", "predicted", "p_female"], rows))
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


def _attribute_galleries(items: ErrorItems, attr: str, raw: Sequence[Any], pred: np.ndarray, limit: int) -> list[str]:
    """Galleries of the errors in up to ``limit`` worst groups of one attribute."""
    y, p = items.y, items.p
    values = normalise_group_values(attr, list(raw), y.size)
    parts = []
    for name in _gallery_groups(values, y, pred, limit):
        sel = np.array([v == name for v in values])
        local = M.most_confident_errors(y[sel], p[sel], items.threshold, items.max_errors)
        global_idx = [int(i) for i in np.flatnonzero(sel)[local]] if local else []
        png = items.figs / f"errors_{safe_name(f'{attr}_{name}')}.png"
        parts.append(_gallery_section(items, f"{attr} = {name}", global_idx, png))
    return parts


def errors_section(items: ErrorItems, group_of: dict[str, Sequence[Any]] | None, max_group_galleries: int) -> list[str]:
    """The most confident errors overall, then per worst group of each attribute in ``group_of``."""
    parts = [
        "<h2>Most confident errors</h2>",
        f'<p class="muted">Wrong answers at the decision threshold (female when p_female &ge; '
        f"{html.escape(fmt(items.threshold))}), the most confident first.</p>",
    ]
    if items.thumbnails is None:
        parts.append('<p class="muted">No thumbnails supplied; listing indices only.</p>')
    idx = M.most_confident_errors(items.y, items.p, items.threshold, items.max_errors)
    parts.append(_gallery_section(items, "All items", idx, items.figs / "errors_all.png"))
    pred = M.predict(items.p, items.threshold)
    for attr, raw in (group_of or {}).items():
        parts += _attribute_galleries(items, attr, raw, pred, max_group_galleries)
    return parts
