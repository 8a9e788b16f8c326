"""The "Quantitative Analyses" section: overall, calibration, abstention, coverage, confusion, per-group and
prints-per-person tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import LABELS
from ..evaluation.groups import SUMMARY_MIN_N
from ..modalities import Modality
from .blocks import Block
from .evaluations import Evaluation
from .format import NOT_APPLICABLE, NOT_MEASURED, ci_text, count, dec, esc, lookup, number, pct, pct_ci, points

SMALL_GROUP_N = SUMMARY_MIN_N  # below this a group's interval is wide


def _splits(metadata: dict, evaluations: list[Evaluation], modality: Modality) -> list[tuple[str, dict | None]]:
    """(row label, metrics dict) for every measured set, in card order."""
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    rows: list[tuple[str, dict | None]] = [
        ("Validation (model selection, calibration)", metrics.get("validation")),
        ("Test (held out)", metrics.get("test")),
    ]
    if "test_per_subject" in metrics or modality.fuses_per_person:
        rows.append(("Test, fused per subject", metrics.get("test_per_subject")))
    if "test_finger_known" in metrics:
        rows.append(("Test, finger position known", metrics.get("test_finger_known")))
    for source_name, evaluation in evaluations:
        rows.append((f"Evaluation ({source_name})", evaluation))
        if "per_subject" in evaluation:
            rows.append((f"Evaluation ({source_name}), fused per subject", evaluation.get("per_subject")))
        if "finger_known" in evaluation:
            rows.append((f"Evaluation ({source_name}), finger position known", evaluation.get("finger_known")))
    return rows


def _recall(m: dict | None, label: str) -> str:
    return pct(lookup(m, "per_class", label, "recall"))


def attribute_title(attr: str) -> str:
    """A group attribute's name in prose (``age_x_gender`` -> "age band × labelled gender")."""
    base, cross = (attr[: -len("_x_gender")], True) if attr.endswith("_x_gender") else (attr, False)
    titles = {"race": "race (as annotated)", "age": "age band", "hand": "hand", "finger": "finger"}
    title = titles.get(base, base.replace("_", " "))
    return f"{title} × labelled gender" if cross else title


def _headline_tables(rows: list[tuple[str, dict | None]], default_min_confidence: Any) -> list[Block]:
    perf = [
        [
            esc(label),
            count(lookup(m, "n")),
            pct_ci(lookup(m, "accuracy"), lookup(m, "accuracy_ci95")),
            pct_ci(lookup(m, "balanced_accuracy"), lookup(m, "balanced_accuracy_ci95")),
            dec(lookup(m, "roc_auc")),
            _recall(m, LABELS[0]),
            _recall(m, LABELS[1]),
        ]
        for label, m in rows
    ]
    calib = [
        [
            esc(label),
            dec(lookup(m, "ece_uncalibrated"), 4),
            dec(lookup(m, "ece"), 4),
            dec(lookup(m, "brier_uncalibrated"), 4),
            dec(lookup(m, "brier"), 4),
        ]
        for label, m in rows
    ]
    abstain = [
        [
            esc(label),
            dec(lookup(m, "min_confidence") if lookup(m, "min_confidence") is not None else default_min_confidence, 4),
            pct(lookup(m, "coverage_at_threshold")),
            pct(lookup(m, "accuracy_at_threshold")),
            pct(lookup(m, "balanced_accuracy_at_threshold")),
            _per_label(lookup(m, "coverage_at_threshold_by_class")),
        ]
        for label, m in rows
    ]
    return [
        ("p", "**Overall performance.**"),
        (
            "table",
            ["Set", "n", "Accuracy", "Balanced accuracy", "ROC-AUC", f"Recall {LABELS[0]}", f"Recall {LABELS[1]}"],
            perf,
        ),
        ("p", "**Calibration** (lower is better)."),
        ("table", ["Set", "ECE before calibration", "ECE after", "Brier before", "Brier after"], calib),
        ("p", "**Abstention.** Inputs below the confidence level are answered “uncertain”."),
        (
            "table",
            [
                "Set",
                "min_confidence",
                "Coverage",
                "Accuracy on answered",
                "Balanced, on answered",
                "Answered per label",
            ],
            abstain,
        ),
    ]


def _per_label(by_class: Any) -> str:
    """``male 82.0%, female 87.1%`` from a ``{label: share}`` dict."""
    if not isinstance(by_class, dict) or not by_class:
        return NOT_MEASURED
    return ", ".join(f"{esc(label)} {pct(share)}" for label, share in by_class.items())


def _cells(items: list, *columns: tuple[str, Callable[[Any], str]]) -> list[list[str]]:
    """Table rows from a list of metric dicts: each column's value formatted by its function."""
    return [[fmt(lookup(item, key)) for key, fmt in columns] for item in items if isinstance(item, dict)]


def _coverage_table(label: str, m: dict | None) -> list[Block]:
    curve = lookup(m, "coverage_curve")
    if not isinstance(curve, list) or not curve:
        return [("p", f"Coverage curve ({esc(label)}): {NOT_MEASURED}.")]
    body = _cells(
        curve, ("min_confidence", lambda x: dec(x, 2)), ("coverage", pct), ("accuracy", pct),
        ("balanced_accuracy", pct), ("n", count),
    )  # fmt: skip
    return [
        ("p", f"**Coverage curve, {esc(label)}:** accuracy when only inputs at or above a confidence are answered."),
        ("table", ["Min confidence", "Coverage", "Accuracy on answered", "Balanced, on answered", "n answered"], body),
    ]


def _prints_table(label: str, rows: Any) -> list[Block]:
    """How a person's fused answer improves with the number of prints given (``by_print_count``)."""
    if not isinstance(rows, list) or not rows:
        return []
    body = _cells(
        rows, ("prints", count), ("n_subjects", count), ("balanced_accuracy", pct), ("roc_auc", dec), ("ece", pct)
    )
    return [
        (
            "p",
            f"**Prints per person, {esc(label)}:** each person's answer from k of their prints (the mean logit of "
            "k prints drawn at random, 20 draws per person), calibrated for k prints.",
        ),
        ("table", ["Prints given", "People", "Balanced accuracy", "ROC-AUC", "ECE"], body),
    ]


def _confusion(label: str, m: dict | None) -> list[Block]:
    cm = lookup(m, "confusion_matrix")
    if not (isinstance(cm, list) and len(cm) == 2 and all(isinstance(r, list) and len(r) == 2 for r in cm)):
        return []
    return [
        ("p", f"**Confusion matrix, {esc(label)}** (rows: labelled, columns: predicted)."),
        (
            "table",
            ["", f"Predicted {LABELS[0]}", f"Predicted {LABELS[1]}"],
            [[f"Labelled {LABELS[i]}", count(cm[i][0]), count(cm[i][1])] for i in range(2)],
        ),
    ]


def _group_rate(stats: dict, label: str) -> str:
    recall = stats.get("recall")
    if not isinstance(recall, dict):
        return NOT_MEASURED
    return NOT_APPLICABLE if recall.get(label) is None else pct(recall.get(label))


def _group_tables(label: str, m: dict | None) -> list[Block]:
    groups = lookup(m, "groups")
    if not isinstance(groups, dict) or not groups:
        return [("p", f"Per-group results ({esc(label)}): {NOT_MEASURED}.")]
    blocks: list[Block] = []
    for attr, values in groups.items():
        if not isinstance(values, dict):
            continue
        summary = values.get("_summary") if isinstance(values.get("_summary"), dict) else {}
        min_n = summary.get("min_n", SMALL_GROUP_N)
        body = []
        for name, stats in values.items():
            if name == "_summary" or not isinstance(stats, dict):
                continue
            n = number(stats.get("n"))
            small = n is not None and number(min_n) is not None and n < min_n
            body.append(
                [
                    esc(name),
                    count(n) + (" †" if small else ""),
                    pct(stats.get("accuracy")),
                    ci_text(stats.get("ci95")),
                    pct(stats.get("balanced_accuracy")),
                    _group_rate(stats, LABELS[0]),
                    _group_rate(stats, LABELS[1]),
                ]
            )
        blocks.append(("p", f"**By {esc(attribute_title(attr))}, {esc(label)}.**"))
        if body:
            blocks.append(
                (
                    "table",
                    [
                        "Group",
                        "n",
                        "Accuracy",
                        "95% CI",
                        "Balanced accuracy",
                        f"Recall {LABELS[0]}",
                        f"Recall {LABELS[1]}",
                    ],
                    body,
                )
            )
        else:
            blocks.append(("p", f"Groups: {NOT_MEASURED}."))
        if not summary:
            blocks.append(("p", f"Worst group and largest gap: {NOT_MEASURED}."))
        elif summary.get("worst_group") is None:
            blocks.append(
                ("p", f"No group has at least {count(min_n)} items: worst group and largest gap {NOT_MEASURED}.")
            )
        else:
            blocks.append(
                (
                    "p",
                    f"Worst group (n ≥ {count(min_n)}): **{esc(summary['worst_group'])}** with accuracy "
                    f"{pct(summary.get('worst_accuracy'))}; largest gap between groups: "
                    f"{points(summary.get('largest_gap'))}.",
                )
            )
    blocks.append(
        (
            "p",
            f"† fewer than {SMALL_GROUP_N} items: the interval is wide. {NOT_APPLICABLE}: the group holds no items "
            "with that label.",
        )
    )
    return blocks


def quantitative_analyses(md: dict, evaluations: list[Evaluation], modality: Modality) -> list[Block]:
    """The "Quantitative Analyses" section: the tables for the test split, then for each evaluation (stored, then
    given)."""
    rows = _splits(md, evaluations, modality)
    blocks = _headline_tables(rows, md.get("min_confidence"))
    test = lookup(md, "metrics", "test")
    blocks += _confusion("test", test)
    blocks += _coverage_table("test", test)
    blocks += _group_tables("test", test)
    blocks += _prints_table("test", lookup(md, "metrics", "test_by_prints"))
    for source_name, evaluation in evaluations:
        blocks += _confusion(source_name, evaluation)
        blocks += _coverage_table(source_name, evaluation)
        blocks += _group_tables(source_name, evaluation)
        blocks += _prints_table(source_name, evaluation.get("per_subject_by_prints"))
    return blocks
