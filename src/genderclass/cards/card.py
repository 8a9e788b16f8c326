"""Model cards (Mitchell et al. 2019, "Model Cards for Model Reporting") built from stored measurements.

Every number on a card is copied from the model's metadata JSON (written by ``genderclass export``)
and, optionally, from a ``metrics.json`` written by ``genderclass evaluate``. Nothing is typed by
hand: a value that was not stored is shown as "not measured".

The card is first assembled as a list of blocks (headings, paragraphs, lists, tables) whose text
uses a tiny inline markup (``**bold**``, ``[text](https://...)``, code spans, backslash escapes);
the same blocks are rendered to Markdown and to a self-contained HTML page (no extra dependency).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..config import AGE_BANDS, ECE_BINS, LABELS, counted_architectures
from ..evaluation.metrics import SUMMARY_MIN_N

NOT_MEASURED = "not measured"
NOT_APPLICABLE = "n/a"
SMALL_GROUP_N = SUMMARY_MIN_N  # below this a group's interval is wide

SECTIONS: tuple[str, ...] = (
    "Model Details",
    "Intended Use",
    "Factors",
    "Metrics",
    "Evaluation Data",
    "Training Data",
    "Quantitative Analyses",
    "Ethical Considerations",
    "Caveats and Recommendations",
)

MODEL_CARDS_PAPER = "https://arxiv.org/abs/1810.03993"
DATASET_LINKS = {
    "utkface": ("UTKFace", "https://susanqq.github.io/UTKFace/"),
    "socofing": ("SOCOFing", "https://arxiv.org/abs/1807.10609"),
}

OUT_OF_SCOPE = (
    "Out of scope: surveillance, identification or tracking of people, and any decision about an individual "
    "(access control, hiring, policing, border control, credit, insurance, health care, or anything else with "
    "consequences for the person)."
)
NON_COMMERCIAL = "The model is derived from this data and inherits its terms: non-commercial research use only."
UNKNOWN_TERMS = "The model is derived from its training data and inherits its terms; check them before any use."
BINARY_LABELS = (
    "The labels are binary (male/female) as annotated in the dataset; they do not capture gender identity, and "
    "no model can tell from an image how a person identifies."
)

Block = tuple[Any, ...]  # ("h", level, text) | ("p", text) | ("ul", [text]) | ("table", [header], [[cell]])


# --------------------------------------------------------------------------- value access and formatting


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...`` or None when any level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def pct(x: Any) -> str:
    """A proportion as a percentage with one decimal (0.9412 -> "94.1%")."""
    v = _number(x)
    return NOT_MEASURED if v is None else f"{100 * v:.1f}%"


def ci_text(ci: Any) -> str:
    """A 95% interval of proportions ([0.92, 0.958] -> "92.0%–95.8%")."""
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_number(v) is not None for v in ci):
        return f"{pct(ci[0])}–{pct(ci[1])}"
    return NOT_MEASURED


def pct_ci(x: Any, ci: Any) -> str:
    """ "94.1% (95% CI 92.0%–95.8%)"; the interval part says "not measured" when missing."""
    if _number(x) is None:
        return NOT_MEASURED
    return f"{pct(x)} (95% CI {ci_text(ci)})"


def dec(x: Any, digits: int = 3) -> str:
    v = _number(x)
    return NOT_MEASURED if v is None else f"{v:.{digits}f}"


def count(x: Any) -> str:
    v = _number(x)
    return NOT_MEASURED if v is None else f"{int(v):,}"


def points(x: Any) -> str:
    """A difference of proportions in percentage points (0.05 -> "5.0 percentage points")."""
    v = _number(x)
    return NOT_MEASURED if v is None else f"{100 * v:.1f} percentage points"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>#])")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])(?:/|~/|[A-Za-z]:[\\/])[^\s'\"]*")


def esc(value: Any) -> str:
    """Data as literal card text (Markdown specials backslash-escaped)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def code(value: Any) -> str:
    """Data as a code span."""
    text = " ".join(str(value).replace("`", "'").split())
    return f"`{text}`" if text else NOT_MEASURED


def public(value: Any) -> str:
    """Drop the machine-specific part of absolute paths (``/home/x/data/utkface`` -> ``…/utkface``)."""

    def short(match: re.Match) -> str:
        parts = [p for p in re.split(r"[\\/]", match.group(0)) if p]
        return "…/" + parts[-1] if parts else "…"

    return _ABSOLUTE_PATH.sub(short, str(value))


def _or(value: Any, fmt=esc) -> str:
    return NOT_MEASURED if value is None or value == "" else fmt(value)


# --------------------------------------------------------------------------- card content


def _dataset(metadata: dict) -> tuple[str, str | None]:
    """(display name, link) of the training dataset from its stored format."""
    fmt = str(_get(metadata, "training", "format") or "").lower()
    if fmt in DATASET_LINKS:
        return DATASET_LINKS[fmt]
    return (f"the training data (reader format {fmt})" if fmt else "the training data"), None


def _dataset_ref(metadata: dict) -> str:
    name, link = _dataset(metadata)
    return f"[{name}]({link})" if link else esc(name)


def _modality(metadata: dict, evaluation: dict | None) -> str:
    modality = metadata.get("modality") or _get(metadata, "preprocess", "modality")
    if not modality and evaluation:
        modality = _get(evaluation, "model", "modality")
    return str(modality or "face")


def _splits(metadata: dict, evaluation: dict | None, source_name: str) -> list[tuple[str, dict | None]]:
    """(row label, metrics dict) for every measured set, in card order."""
    metrics = metadata.get("metrics") if isinstance(metadata.get("metrics"), dict) else {}
    rows: list[tuple[str, dict | None]] = [
        ("Validation (model selection, calibration)", metrics.get("validation")),
        ("Test (held out)", metrics.get("test")),
    ]
    if "test_per_subject" in metrics or _modality(metadata, evaluation) == "fingerprint":
        rows.append(("Test, fused per subject", metrics.get("test_per_subject")))
    if "test_finger_known" in metrics:
        rows.append(("Test, finger position known", metrics.get("test_finger_known")))
    if evaluation is not None:
        rows.append((f"Evaluation ({source_name})", evaluation))
        if "per_subject" in evaluation:
            rows.append((f"Evaluation ({source_name}), fused per subject", evaluation.get("per_subject")))
        if "finger_known" in evaluation:
            rows.append((f"Evaluation ({source_name}), finger position known", evaluation.get("finger_known")))
    return rows


def _recall(m: dict | None, label: str) -> str:
    return pct(_get(m, "per_class", label, "recall"))


def _model_details(md: dict, modality: str) -> list[Block]:
    pre = md.get("preprocess") if isinstance(md.get("preprocess"), dict) else {}
    size, channels = pre.get("input_size"), pre.get("channels")
    if _number(size) is not None:
        colour = {1: "grayscale", 3: "RGB"}.get(channels, f"{channels} channels" if channels else "")
        input_text = f"{int(size)}×{int(size)} pixels" + (f", {colour}" if colour else "")
    else:
        input_text = NOT_MEASURED
    tensor = md.get("input") if isinstance(md.get("input"), dict) else {}
    if tensor:
        rng = tensor.get("range")
        input_text += (
            f"; tensor {code(tensor.get('name', '?'))} {esc(tensor.get('layout', ''))} {esc(tensor.get('dtype', ''))}"
        )
        if isinstance(rng, list) and len(rng) == 2:
            input_text += f", values {esc(rng[0])}–{esc(rng[1])}"
    pre_items = ", ".join(code(f"{k}={v}") for k, v in pre.items() if k != "modality") or NOT_MEASURED
    temperature, threshold, min_conf = md.get("temperature"), md.get("threshold"), md.get("min_confidence")
    labels = md.get("labels") or None
    software = md.get("software") if isinstance(md.get("software"), dict) else {}
    licence = _get(md, "training", "data_license")
    items = [
        f"**Name:** {_or(md.get('name'))}",
        f"**Modality:** {esc(modality)} ({'face photos' if modality == 'face' else 'fingerprint images'})",
        f"**Model type:** convolutional neural network, binary classifier exported to ONNX; "
        f"architecture {_architecture_text(md.get('architecture'))}",
        f"**Input size:** {input_text}",
        f"**Preprocessing:** {pre_items}",
        "**Test-time augmentation:** "
        + (
            NOT_MEASURED
            if md.get("flip_tta") is None
            else ("mean of the logits of the image and its mirror image" if md.get("flip_tta") else "none")
        ),
        "**Weights:** "
        + (
            f"{esc(quantization.get('type'))} ({esc(quantization.get('method'))}; "
            f"calibration data: {esc(quantization.get('calibration'))})"
            if isinstance(quantization := md.get("quantization"), dict)
            else "32-bit float"
        ),
        f"**Output:** {_or(_get(md, 'output', 'meaning'))}; labels {_or(', '.join(labels) if labels else None)} "
        f"(positive class {_or(md.get('positive_label'))})",
        f"**Calibration temperature:** {dec(temperature, 4)} (p_female = sigmoid(logit / T), fitted on validation)",
        f"**Decision threshold:** {dec(threshold, 4)} (predict female when the calibrated p_female ≥ threshold)",
        f"**Abstention (min_confidence):** {dec(min_conf, 4)} (below this confidence in the predicted label "
        "the answer is “uncertain”; "
        + (
            "confidence is max(p_female, 1 − p_female))"
            if _number(threshold) in (None, 0.5)
            else "confidence is the predicted label's probability with the log-odds shifted so that the decision "
            "threshold sits at 0.5, i.e. with both labels weighted equally, as the threshold weights them)"
        ),
        f"**Created:** {_or(md.get('created'))}; metadata format version {_or(md.get('format_version'))}",
        "**Software:** " + (", ".join(f"{esc(k)} {esc(v)}" for k, v in software.items()) or NOT_MEASURED),
        f"**Licence of the training data:** {_or(licence)}",
        NON_COMMERCIAL if licence and "non-commercial" in str(licence).lower() else UNKNOWN_TERMS,
    ]
    return [("ul", items)]


def _intended_use(md: dict, modality: str) -> list[Block]:
    what = "face photos" if modality == "face" else "fingerprint images"
    return [
        (
            "p",
            f"**Primary intended uses.** Estimating the binary gender label (male/female, as annotated in "
            f"{_dataset_ref(md)}) from {what} for:",
        ),
        (
            "ul",
            [
                "research, education and benchmarking, including the study of this kind of model's errors and biases;",
                "building opt-in applications in which people submit their own image and the prediction, with its "
                "confidence, is shown to that same person.",
            ],
        ),
        (
            "p",
            "**Primary intended users.** Researchers, students and teachers, and developers of such opt-in "
            "applications.",
        ),
        ("p", f"**{OUT_OF_SCOPE}**"),
        (
            "ul",
            [
                "Inferring anyone's gender identity. " + BINARY_LABELS,
                "Processing images of people who have not agreed to it.",
                "Commercial use: the training data is licensed for non-commercial research only."
                if "non-commercial" in str(_get(md, "training", "data_license") or "").lower()
                else "Any use the training data's licence does not allow.",
            ],
        ),
    ]


def _group_attributes(*metric_dicts: dict | None) -> list[str]:
    seen: list[str] = []
    for m in metric_dicts:
        groups = _get(m, "groups")
        if isinstance(groups, dict):
            for attr in groups:
                if attr not in seen:
                    seen.append(attr)
    return seen


def _attr_title(attr: str) -> str:
    base, cross = (attr[: -len("_x_gender")], True) if attr.endswith("_x_gender") else (attr, False)
    titles = {"race": "race (as annotated)", "age": "age band", "hand": "hand", "finger": "finger"}
    title = titles.get(base, base.replace("_", " "))
    return f"{title} × labelled gender" if cross else title


def _factors(md: dict, evaluation: dict | None, modality: str) -> list[Block]:
    if modality == "face":
        relevant = [
            "Age: children's faces differ little by sex, so accuracy is expected to drop for the youngest ages.",
            "Race as annotated in the dataset (coarse categories, not self-reported) and skin tone.",
            "The labelled gender itself (the error rates of the two labels can differ) and its intersection with "
            "age and race.",
            "Image conditions: camera, resolution, compression, lighting, pose, expression, occlusion (glasses, "
            "masks, hair, make-up) and the face crop and alignment, which must match the model's preprocessing.",
        ]
    else:
        relevant = [
            "Hand and finger.",
            "Sensor, resolution, pressure and image quality; synthetic alterations (obliteration, central "
            "rotation, z-cut) where evaluated.",
            "The population the prints come from (age, ancestry, occupation), which a single dataset cannot span.",
        ]
    attrs = _group_attributes(_get(md, "metrics", "test"), evaluation)
    measured = (
        "Measured per group in this card: " + ", ".join(esc(_attr_title(a)) for a in attrs) + "."
        if attrs
        else f"Per-group results: {NOT_MEASURED}."
    )
    return [("p", "**Relevant factors.**"), ("ul", relevant), ("p", f"**Evaluation factors.** {measured}")]


def _metrics_section(md: dict, modality: str) -> list[Block]:
    items = [
        "**Accuracy** with a 95% Wilson score interval.",
        "**Balanced accuracy**: the mean of the recalls of the two labels (robust to class imbalance); its interval "
        "is the mean of the two per-label Wilson bounds (an approximation).",
        "**Recall per label** (male, female): the share of each label that is predicted correctly.",
        "**ROC-AUC** of the calibrated probability (threshold-free ranking quality).",
        f"**ECE** (expected calibration error, top-label, {ECE_BINS} equal-width confidence bins) and the **Brier "
        "score**, each before and after temperature scaling.",
        f"**Coverage at the abstention threshold**: the share of inputs answered at min_confidence "
        f"{dec(md.get('min_confidence'), 4)}, and the accuracy on those answered.",
        f"**Per-group metrics** for every annotated attribute and its intersection with the labelled gender; the "
        f"worst group and the largest gap consider groups with at least {SMALL_GROUP_N} items.",
    ]
    if modality == "fingerprint":
        items.append(
            "**Per-subject fused metrics**: the logits of all prints of one person are averaged into one prediction "
            "per person, calibrated with "
            + (
                f"the temperature fitted on k-print subsets of the validation subjects for k prints (k = 1, 2, …: "
                f"{temperatures}; more prints: the last)."
                if (temperatures := ", ".join(dec(t, 3) for t in md.get("fusion_temperatures") or []))
                else f"its own temperature {dec(md.get('fusion_temperature'), 4)} (fitted on the validation subjects)."
            )
        )
    known = md.get("finger_known")
    if modality == "fingerprint" and isinstance(known, dict) and isinstance(known.get("offsets"), dict):
        offsets = ", ".join(f"{esc(finger)} {dec(value, 2)}" for finger, value in known["offsets"].items())
        items.append(
            "**Finger position known** (`predict --finger`): each finger shifts the logit for everyone (offsets "
            f"{offsets}, fitted on validation, out-of-fold for a cross-validation ensemble); with the finger "
            "given, its offset is removed and a calibration "
            f"fitted without the offsets applies (temperature {dec(known.get('temperature'), 4)}, threshold "
            f"{dec(known.get('threshold'), 4)}, min_confidence {dec(known.get('min_confidence'), 4)})."
        )
    return [
        ("ul", items),
        (
            "p",
            f"Decision threshold {dec(md.get('threshold'), 4)}, temperature and abstention level were all chosen on "
            "the validation split; the test split was used only for the numbers reported here.",
        ),
    ]


def _architecture_text(architecture: object) -> str:
    """An ensemble's member architectures, repeats counted: ``20 × `small_resnet```."""
    if not isinstance(architecture, str) or not architecture:
        return _or(architecture, code)
    return counted_architectures(architecture, code)


def _fold_layout(cross_validation: dict) -> tuple[object, str]:
    """K (older metadata: one member per fold) and who scores each held-out image."""
    per_file = cross_validation.get("members_per_validation_file")
    folds = cross_validation.get("folds", cross_validation.get("members"))
    if isinstance(per_file, int) and per_file > 1:
        return folds, f"the mean logit of the {per_file} members that held it out"
    return folds, "the member that held it out"


def _validation_item(md: dict, sizes: dict) -> str:
    cross_validation = _get(md, "training", "cross_validation")
    if isinstance(cross_validation, dict):
        folds, scorers = _fold_layout(cross_validation)
        return (
            f"**Validation (cross-validation):** the {count(_get(sizes, 'val'))} non-test images form "
            f"{count(folds)} folds; each member trained on the others and picked its best "
            f"epoch on its own fold, and every image is scored by {scorers} (out-of-fold). "
            "These scores fit the temperature, threshold and abstention level (their numbers are optimistic)."
        )
    return (
        f"**Validation split:** {count(_get(sizes, 'val'))} images, used to pick the best epoch and to fit the "
        "temperature, threshold and abstention level (its numbers are optimistic)."
    )


def _evaluation_data(md: dict, evaluation: dict | None, modality: str, source_name: str) -> list[Block]:
    sizes = _get(md, "training", "split_sizes") or {}
    grouping = (
        "subject-disjoint: every print of a person falls in one split, so no test subject was seen in training"
        if modality == "fingerprint"
        else "group-disjoint: exact and near-duplicate images (perceptual hash) are kept in one split"
    )
    items = [
        f"**Test split:** {count(_get(sizes, 'test'))} images of {_dataset_ref(md)}, held out from training; "
        f"{grouping}; stratified by label.",
        _validation_item(md, sizes),
        f"**Data hash:** {_or(_get(md, 'training', 'data_hash'), code)}",
    ]
    if modality == "fingerprint":
        items.append(f"**Test subjects:** {count(_get(md, 'metrics', 'test_per_subject', 'n_subjects'))}")
    blocks: list[Block] = [("ul", items)]
    if evaluation is not None:
        model_name = _get(evaluation, "model", "name")
        eval_items = [
            f"**Source:** {esc(source_name)} (written by {code('genderclass evaluate')})",
            f"**Images evaluated:** {count(evaluation.get('n'))}; unreadable {count(evaluation.get('n_unreadable'))}; "
            f"no face found {count(evaluation.get('n_no_face'))}",
            f"**Crop mode:** {_or(evaluation.get('crop_mode'))}",
            f"**Model evaluated:** {_or(model_name)}",
        ]
        if "per_subject" in evaluation:
            eval_items.append(f"**Subjects:** {count(_get(evaluation, 'per_subject', 'n_subjects'))}")
        if model_name and md.get("name") and model_name != md.get("name"):
            eval_items.append(
                f"**Warning:** the evaluation file was produced with model {esc(model_name)}, not "
                f"{esc(md.get('name'))}."
            )
        blocks += [("p", "**Additional evaluation.**"), ("ul", eval_items)]
    return blocks


_HYPERPARAMETERS = (
    "arch",
    "width",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "dropout",
    "patience",
    "monitor",
    "balance",
    "aux_task",
    "aux_weight",
    "seed",
    "split_seed",
    "val_fraction",
    "folds",
    "test_fraction",
    "near_duplicate_distance",
    "limit",
)


def _stages_text(stages: Any) -> str | None:
    """Earlier ``--init-from`` stages, oldest first: each one's command and best epoch."""
    if not isinstance(stages, list) or not stages:
        return None
    described = []
    for stage in stages:
        stage = stage if isinstance(stage, dict) else {}
        command = public(stage["command"]) if stage.get("command") else None
        described.append(
            f"{code(command) if command else 'command not recorded'} (checkpoint {_or(public(stage.get('checkpoint') or ''), code)}, "
            f"epoch counter {count(stage.get('epoch'))})"
        )
    return "; then ".join(described)


def _teachers_text(teachers: Any) -> str:
    """The networks a run was distilled from, each with the stages that trained it ("" for none)."""
    if not isinstance(teachers, list) or not teachers:
        return ""
    described = [f"({i}) {_stages_text(t) or NOT_MEASURED}" for i, t in enumerate(teachers, 1)]
    return f"the mean logit of {len(described)} network{'s' if len(described) > 1 else ''}: " + "; ".join(described)


def _members_line(members: list[dict]) -> list[str]:
    """One line naming an ensemble's members (none for a single model)."""
    if not members:
        return []
    described = []
    for member in members:
        text = f"{_or(member.get('architecture'), code)} at {count(member.get('input_size'))} px"
        if member.get("resized_in_graph_from"):
            text += f" (resized in the graph from {count(member['resized_in_graph_from'])} px)"
        if member.get("folds"):
            text += f", validated on fold {member['fold']} of {member['folds']}"
        if member.get("best_epoch") is not None:
            text += f", best epoch counter {count(member['best_epoch'])}"
        if stages := _stages_text(member.get("earlier_stages")):
            text += f", fine-tuned from: {stages}"
        if teachers := _teachers_text(member.get("teachers")):
            text += f", taught by {teachers}"
        described.append(text)
    return ["**Ensemble members (mean logit):** " + "; ".join(described)]


def _training_data(md: dict) -> list[Block]:
    training = md.get("training") if isinstance(md.get("training"), dict) else {}
    sizes = training.get("split_sizes") if isinstance(training.get("split_sizes"), dict) else {}
    config = training.get("config") if isinstance(training.get("config"), dict) else {}
    members = [m for m in training.get("members") or [] if isinstance(m, dict)]
    stages = _stages_text(training.get("earlier_stages"))
    teachers = _teachers_text(training.get("teachers"))
    split_text = ", ".join(f"{esc(k)} {count(v)}" for k, v in sizes.items()) if sizes else NOT_MEASURED
    cross_validation = training.get("cross_validation")
    if isinstance(cross_validation, dict) and sizes:
        per_member = [n for n in cross_validation.get("validation_files_per_member") or [] if isinstance(n, int)]
        bounds = dict.fromkeys([min(per_member), max(per_member)]) if per_member else {}
        fold_sizes = "–".join(count(n) for n in bounds) or NOT_MEASURED
        split_text = (
            f"{count(_fold_layout(cross_validation)[0])}-fold cross-validation over {count(sizes.get('val'))} "
            f"(each member validates on {fold_sizes} and trains on the rest), test {count(sizes.get('test'))}, "
            f"dropped {count(sizes.get('dropped'))}"
        )
    # listed only when they apply; with cross-validation the folds replace val_fraction
    applies = {
        "aux_task": config.get("aux_task"),
        "aux_weight": config.get("aux_task"),
        "folds": config.get("folds"),
        "val_fraction": not config.get("folds"),
    }
    shown = [k for k in _HYPERPARAMETERS if k in config and applies.get(k, True)]
    hyper = ", ".join(code(f"{k}={config[k]}") for k in shown) or NOT_MEASURED
    return [
        (
            "ul",
            [
                f"**Dataset:** {_dataset_ref(md)} (reader format {_or(training.get('format'), code)}, "
                f"location as given {_or(public(training['data']) if training.get('data') else None, code)})",
                f"**Data hash:** {_or(training.get('data_hash'), code)}",
                f"**Split sizes:** {split_text}",
                f"**Duplicate groups dropped for conflicting labels:** {count(training.get('n_conflicting_groups'))}",
                *(
                    [f"**Earlier stages (oldest first; each fine-tuned from the one before):** {stages}"]
                    if stages
                    else []
                ),
                f"**Training command{' (last stage)' if stages else ''}:** {_or(public(training['command']) if training.get('command') else None, code)}",
                *(
                    [f"**Distilled from** {teachers} (each trained by the commands listed, in order)"]
                    if teachers
                    else []
                ),
                f"**Hyper-parameters{' (of the member with the largest input)' if members else ''}:** {hyper}",
                *_members_line(members),
                *(
                    []
                    if members
                    else [f"**Best epoch (checkpoint's epoch counter):** {count(training.get('best_epoch'))}"]
                ),
                f"**Licence of the training data:** {_or(training.get('data_license'))}",
            ],
        )
    ]


def _headline_tables(rows: list[tuple[str, dict | None]], default_min_confidence: Any) -> list[Block]:
    perf = [
        [
            esc(label),
            count(_get(m, "n")),
            pct_ci(_get(m, "accuracy"), _get(m, "accuracy_ci95")),
            pct_ci(_get(m, "balanced_accuracy"), _get(m, "balanced_accuracy_ci95")),
            dec(_get(m, "roc_auc")),
            _recall(m, LABELS[0]),
            _recall(m, LABELS[1]),
        ]
        for label, m in rows
    ]
    calib = [
        [
            esc(label),
            dec(_get(m, "ece_uncalibrated"), 4),
            dec(_get(m, "ece"), 4),
            dec(_get(m, "brier_uncalibrated"), 4),
            dec(_get(m, "brier"), 4),
        ]
        for label, m in rows
    ]
    abstain = [
        [
            esc(label),
            dec(_get(m, "min_confidence") if _get(m, "min_confidence") is not None else default_min_confidence, 4),
            pct(_get(m, "coverage_at_threshold")),
            pct(_get(m, "accuracy_at_threshold")),
            pct(_get(m, "balanced_accuracy_at_threshold")),
            _per_label(_get(m, "coverage_at_threshold_by_class")),
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
    return [[fmt(_get(item, key)) for key, fmt in columns] for item in items if isinstance(item, dict)]


def _coverage_table(label: str, m: dict | None) -> list[Block]:
    curve = _get(m, "coverage_curve")
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
    cm = _get(m, "confusion_matrix")
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
    groups = _get(m, "groups")
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
            n = _number(stats.get("n"))
            small = n is not None and _number(min_n) is not None and n < min_n
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
        blocks.append(("p", f"**By {esc(_attr_title(attr))}, {esc(label)}.**"))
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


def _quantitative(md: dict, evaluation: dict | None, source_name: str) -> list[Block]:
    rows = _splits(md, evaluation, source_name)
    blocks = _headline_tables(rows, md.get("min_confidence"))
    test = _get(md, "metrics", "test")
    blocks += _confusion("test", test)
    blocks += _coverage_table("test", test)
    blocks += _group_tables("test", test)
    blocks += _prints_table("test", _get(md, "metrics", "test_by_prints"))
    if evaluation is not None:
        blocks += _confusion(source_name, evaluation)
        blocks += _coverage_table(source_name, evaluation)
        blocks += _group_tables(source_name, evaluation)
        blocks += _prints_table(source_name, evaluation.get("per_subject_by_prints"))
    return blocks


def _ethics(md: dict, modality: str) -> list[Block]:
    items = [
        BINARY_LABELS + " A prediction estimates how the dataset's annotators would have labelled the image.",
        "Misclassification harms: being misgendered by a machine is hurtful, above all for transgender, non-binary "
        "and gender-nonconforming people, and errors are not spread evenly across groups (see the per-group "
        "tables). Automated gender inference has been used to exclude and discriminate; this model must not be.",
        f"{'Faces' if modality == 'face' else 'Fingerprints'} are biometric data: process them only with the "
        "informed consent of the person shown, and do not keep them longer than needed.",
    ]
    fmt = str(_get(md, "training", "format") or "").lower()
    if fmt == "utkface":
        items.append(
            "Label noise: UTKFace's age, gender and race labels were estimated by an algorithm and then checked by "
            "human annotators, not self-reported; some labels are wrong, and the race categories are coarse."
        )
    else:
        items.append(
            "Label noise: the labels were assigned by the dataset's creators, not self-reported by the people "
            "shown; some are likely wrong."
        )
    if modality == "fingerprint" or fmt == "socofing":
        items.append(
            "Predicting sex from fingerprints is a research question with weak, population-dependent signal; it "
            "must not be presented as a biological fact about a person."
        )
    return [("ul", items)]


def _age_numbers(label: str, m: dict | None) -> str | None:
    ages = _get(m, "groups", "age")
    if not isinstance(ages, dict):
        return None
    order = [name for _, _, name in AGE_BANDS]
    bands = [b for b in order if isinstance(ages.get(b), dict)]
    bands += [b for b in ages if b not in bands and b != "_summary" and isinstance(ages.get(b), dict)]
    if not bands:
        return None
    parts = [f"{esc(b)}: {pct(ages[b].get('accuracy'))} (n={count(ages[b].get('n'))})" for b in bands]
    return f"Accuracy by age band ({esc(label)}): " + "; ".join(parts) + "."


def _children_text(md: dict, evaluation: dict | None, source_name: str) -> str:
    text = "Children's faces are far harder: before puberty faces differ little by sex. "
    numbers = [
        s for s in (_age_numbers("test", _get(md, "metrics", "test")), _age_numbers(source_name, evaluation)) if s
    ]
    return text + (" ".join(numbers) if numbers else f"Accuracy by age band: {NOT_MEASURED}.")


def _caveats(md: dict, evaluation: dict | None, modality: str, source_name: str) -> list[Block]:
    dataset = _dataset_ref(md)
    items: list[str] = []
    test = _get(md, "metrics", "test")
    if not isinstance(test, dict) or _number(test.get("accuracy")) is None:
        items.append(f"Test accuracy is {NOT_MEASURED}: do not rely on this model before evaluating it.")
    if modality == "face":
        items.append(_children_text(md, evaluation, source_name))
        items.append(
            f"Faces from other sources: the test split comes from the same collection as the training data "
            f"({dataset}). Photos from other cameras, resolutions, lighting, poses, crops or face detectors differ "
            "from it; expect lower accuracy and worse calibration than reported here."
        )
    else:
        items.append(
            f"One population: {dataset} holds prints from a single population (African adults, per the dataset's "
            "paper) and one kind of sensor; accuracy on other populations, ages and sensors is unknown."
        )
        items.append(
            "The evaluation is subject-disjoint (no test person was seen in training). Per-image accuracy "
            f"{pct(_get(test, 'accuracy'))}; fused over all prints of a person "
            f"{pct(_get(md, 'metrics', 'test_per_subject', 'accuracy'))} on "
            f"{count(_get(md, 'metrics', 'test_per_subject', 'n_subjects'))} test subjects."
        )
    items += [
        f"Measure on your own labelled data before relying on the numbers: {code('genderclass evaluate')}, then "
        f"regenerate this card with {code('genderclass card --evaluation metrics.json')}.",
        "Keep the abstention: show “uncertain” instead of a forced answer, and show the confidence with every "
        "prediction.",
        f"Small groups (marked †, fewer than {SMALL_GROUP_N} items) have wide intervals; a missing group was not "
        "measured, not found to be fair.",
        "Validation numbers are optimistic: the best epoch, temperature, threshold and abstention level were chosen "
        "on that split.",
    ]
    return [("ul", items)]


def card_blocks(metadata: dict, evaluation: dict | None = None, *, evaluation_name: str | None = None) -> list[Block]:
    """The card as structured blocks (rendered by :func:`to_markdown` and :func:`to_html`)."""
    md = metadata if isinstance(metadata, dict) else {}
    modality = _modality(md, evaluation)
    source_name = evaluation_name or "evaluation"
    name = md.get("name") or modality
    dataset_name, _ = _dataset(md)
    blocks: list[Block] = [
        ("h", 1, f"Model card: {esc(name)}"),
        (
            "p",
            f"Gender classification (male/female as labelled in {esc(dataset_name)}) from "
            f"{'face photos' if modality == 'face' else 'fingerprint images'}. This card follows "
            f"[Mitchell et al. 2019, “Model Cards for Model Reporting”]({MODEL_CARDS_PAPER}); it was generated by "
            f"{code('genderclass card')} from the model's stored metadata"
            + (f" and {esc(source_name)}" if evaluation is not None else "")
            + f", and every number is copied from there (“{NOT_MEASURED}” where nothing was stored).",
        ),
    ]
    sections = {
        "Model Details": _model_details(md, modality),
        "Intended Use": _intended_use(md, modality),
        "Factors": _factors(md, evaluation, modality),
        "Metrics": _metrics_section(md, modality),
        "Evaluation Data": _evaluation_data(md, evaluation, modality, source_name),
        "Training Data": _training_data(md),
        "Quantitative Analyses": _quantitative(md, evaluation, source_name),
        "Ethical Considerations": _ethics(md, modality),
        "Caveats and Recommendations": _caveats(md, evaluation, modality, source_name),
    }
    for title in SECTIONS:
        blocks.append(("h", 2, title))
        blocks += sections[title]
    return blocks


def render_card(metadata: dict, evaluation: dict | None = None, *, evaluation_name: str | None = None) -> str:
    """The model card as Markdown."""
    return to_markdown(card_blocks(metadata, evaluation, evaluation_name=evaluation_name))


def render_card_html(metadata: dict, evaluation: dict | None = None, *, evaluation_name: str | None = None) -> str:
    """The model card as a self-contained HTML page (same content as :func:`render_card`)."""
    blocks = card_blocks(metadata, evaluation, evaluation_name=evaluation_name)
    return to_html(blocks)


# --------------------------------------------------------------------------- renderers


def _md_cell(text: str) -> str:
    return text.replace("\n", " ")


def to_markdown(blocks: Iterable[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = [
                "| " + " | ".join(_md_cell(h) for h in header) + " |",
                "|" + "|".join("---" for _ in header) + "|",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown block {kind!r}")
    return "\n\n".join(out) + "\n"


_ESCAPED = re.compile(r"\\([\\`*_\[\]|<>#])")
_CODE = re.compile(r"`([^`]*)`")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def inline_html(text: str) -> str:
    """The card's inline markup to HTML; all text is HTML-escaped."""
    stash: list[str] = []

    def keep(fragment: str) -> str:
        stash.append(fragment)
        return f"\x00{len(stash) - 1}\x00"

    # code spans first (their content is literal), then escaped characters, then links and bold
    text = _CODE.sub(lambda m: keep(f"<code>{html.escape(m.group(1))}</code>"), text)
    text = _ESCAPED.sub(lambda m: keep(html.escape(m.group(1))), text)
    text = html.escape(text, quote=False)
    text = _LINK.sub(lambda m: keep(f'<a href="{html.escape(m.group(2), quote=True)}">{m.group(1)}</a>'), text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    while "\x00" in text:
        text = re.sub(r"\x00(\d+)\x00", lambda m: stash[int(m.group(1))], text)
    return text


def _plain(text: str) -> str:
    """Text without backslash escapes (for titles and anchors)."""
    return _ESCAPED.sub(r"\1", text)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#1d1d1f;
max-width:62rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.8rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}
h2{font-size:1.35rem;margin-top:2.2rem;border-bottom:1px solid #eee;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.92rem;display:block;overflow-x:auto}
th,td{border:1px solid #d0d0d5;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f3f6}tr:nth-child(even) td{background:#fafafb}
code{background:#f3f3f6;padding:.05rem .3rem;border-radius:3px;font-size:.88em;word-break:break-word}
a{color:#0b5cad}li{margin:.2rem 0}
nav ol{columns:2;font-size:.95rem}
""".strip()


def to_html(blocks: Sequence[Block]) -> str:
    title = next((b[2] for b in blocks if b[0] == "h" and b[1] == 1), "Model card")
    body: list[str] = []
    toc = [b[2] for b in blocks if b[0] == "h" and b[1] == 2]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            level, text = block[1], block[2]
            anchor = f' id="{_slug(_plain(text))}"' if level > 1 else ""
            body.append(f"<h{level}{anchor}>{inline_html(text)}</h{level}>")
            if level == 1 and toc:
                links = "".join(f'<li><a href="#{_slug(_plain(t))}">{inline_html(t)}</a></li>' for t in toc)
                body.append(f"<nav><ol>{links}</ol></nav>")
        elif kind == "p":
            body.append(f"<p>{inline_html(block[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f'<th scope="col">{inline_html(h)}</th>' for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown block {kind!r}")
    plain_title = html.escape(_plain(title))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{plain_title}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- files


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} is not a JSON object")
    return data


def write_card(
    model: str | Path | None,
    out: str | Path | None = None,
    modality: str = "face",
    evaluation_json: str | Path | None = None,
) -> tuple[Path, Path]:
    """Write ``<out>.md`` and ``<out>.html``; returns both paths.

    ``model`` is found as ``GenderClassifier.load`` finds it (``None`` = the bundled model of ``modality``).
    By default the card goes next to the model as ``<modality>_card.md`` / ``<modality>_card.html``
    (for a model in the package's own folder: into the current folder); ``out`` may name the Markdown file, an
    existing folder, or a folder to make (ending in a slash).
    """
    from ..inference.classifier import model_files

    onnx_path, metadata = model_files(model, modality)
    meta_path = onnx_path.with_suffix(".json")
    model_modality = metadata.get("modality") or _get(metadata, "preprocess", "modality") or modality
    evaluation = None
    evaluation_name = None
    if evaluation_json is not None:
        eval_path = Path(evaluation_json)
        if not eval_path.is_file():
            raise FileNotFoundError(f"evaluation file not found: {eval_path}")
        evaluation = _read_json(eval_path, "evaluation")
        eval_modality = _get(evaluation, "model", "modality")
        if eval_modality and eval_modality != model_modality:
            raise ValueError(
                f"{eval_path} evaluates a {eval_modality} model, but the card is for a {model_modality} model"
            )
        evaluation_name = eval_path.name
    default_name = f"{model_modality}_card.md"
    if out is None:  # never into the installed package: the shipped cards stay as shipped
        from ..inference.bundled import models_dir

        shipped = meta_path.parent.resolve() == models_dir().resolve()
        md_path = (Path.cwd() if shipped else meta_path.parent) / default_name
    else:
        md_path = Path(out)
        if md_path.is_dir() or str(out).endswith(("/", os.sep)):  # a folder, existing or to be made
            md_path = md_path / default_name
        elif md_path.suffix.lower() != ".md":
            md_path = md_path.with_suffix(".md")
    html_path = md_path.with_suffix(".html")
    blocks = card_blocks(metadata, evaluation, evaluation_name=evaluation_name)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(to_markdown(blocks), encoding="utf-8")
    html_path.write_text(to_html(blocks), encoding="utf-8")
    return md_path, html_path
