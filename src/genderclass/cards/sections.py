"""The descriptive sections of the card: Model Details, Intended Use, Factors, Metrics, Evaluation Data,
Ethical Considerations, and Caveats and Recommendations (the tables are in :mod:`.quantitative`, the
training run in :mod:`.training_data`)."""

from __future__ import annotations

from ..config import AGE_BANDS, ECE_BINS, counted_architectures
from ..modalities import Modality, modality_of_format
from .blocks import Block
from .evaluations import Evaluation
from .format import NOT_MEASURED, code, count, dec, esc, lookup, number, or_missing, pct, public
from .metadata import dataset_ref
from .quantitative import SMALL_GROUP_N, attribute_title
from .training_data import fold_layout

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


def model_details(md: dict, modality: Modality) -> list[Block]:
    """The "Model Details" section: what the model is, its input, calibration, decision rule and licence."""
    pre = md.get("preprocess") if isinstance(md.get("preprocess"), dict) else {}
    size, channels = pre.get("input_size"), pre.get("channels")
    if number(size) is not None:
        known = {1: "grayscale", 3: "RGB"}.get(channels) if isinstance(channels, int) else None
        colour = known or (f"{esc(channels)} channels" if channels else "")
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
    licence = lookup(md, "training", "data_license")
    items = [
        f"**Name:** {or_missing(md.get('name'))}",
        f"**Modality:** {esc(modality.name)} ({modality.images})",
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
        f"**Output:** {or_missing(lookup(md, 'output', 'meaning'))}; labels {or_missing(', '.join(labels) if labels else None)} "
        f"(positive class {or_missing(md.get('positive_label'))})",
        f"**Calibration temperature:** {dec(temperature, 4)} (p_female = sigmoid(logit / T), fitted on validation)",
        f"**Decision threshold:** {dec(threshold, 4)} (predict female when the calibrated p_female ≥ threshold)",
        f"**Abstention (min_confidence):** {dec(min_conf, 4)} (below this confidence in the predicted label "
        "the answer is “uncertain”; "
        + (
            "confidence is max(p_female, 1 − p_female))"
            if number(threshold) in (None, 0.5)
            else "confidence is the predicted label's probability with the log-odds shifted so that the decision "
            "threshold sits at 0.5, i.e. with both labels weighted equally, as the threshold weights them)"
        ),
        f"**Created:** {or_missing(md.get('created'))}; metadata format version {or_missing(md.get('format_version'))}",
        "**Software:** " + (", ".join(f"{esc(k)} {esc(v)}" for k, v in software.items()) or NOT_MEASURED),
        f"**Licence of the training data:** {or_missing(licence)}",
        NON_COMMERCIAL if licence and "non-commercial" in str(licence).lower() else UNKNOWN_TERMS,
    ]
    return [("ul", items)]


def intended_use(md: dict, modality: Modality) -> list[Block]:
    """The "Intended Use" section: primary uses and users, and what is out of scope."""
    return [
        (
            "p",
            f"**Primary intended uses.** Estimating the binary gender label (male/female, as annotated in "
            f"{dataset_ref(md)}) from {modality.images} for:",
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
                if "non-commercial" in str(lookup(md, "training", "data_license") or "").lower()
                else "Any use the training data's licence does not allow.",
            ],
        ),
    ]


def _group_attributes(*metric_dicts: dict | None) -> list[str]:
    seen: list[str] = []
    for m in metric_dicts:
        groups = lookup(m, "groups")
        if isinstance(groups, dict):
            for attr in groups:
                if attr not in seen:
                    seen.append(attr)
    return seen


def factors(md: dict, evaluations: list[Evaluation], modality: Modality) -> list[Block]:
    """The "Factors" section: what can change accuracy, and which groups this card measures."""
    relevant = list(modality.card_factors)
    attrs = _group_attributes(lookup(md, "metrics", "test"), *(evaluation for _, evaluation in evaluations))
    measured = (
        "Measured per group in this card: " + ", ".join(esc(attribute_title(a)) for a in attrs) + "."
        if attrs
        else f"Per-group results: {NOT_MEASURED}."
    )
    return [("p", "**Relevant factors.**"), ("ul", relevant), ("p", f"**Evaluation factors.** {measured}")]


def metrics_section(md: dict, modality: Modality) -> list[Block]:
    """The "Metrics" section: what is reported and how it is computed."""
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
    if modality.fuses_per_person:
        items.append(
            "**Per-subject fused metrics**: the logits of all prints of one person are averaged into one prediction "
            "per person, calibrated with "
            + (
                f"the temperature fitted on k-print subsets of the validation subjects for k prints (k = 1, 2, …: "
                f"{temperatures}; more prints: the last); a single print is not a mean and keeps the per-print "
                f"temperature {dec(md.get('temperature'), 4)}, so fusing one print answers as predicting it."
                if (temperatures := ", ".join(dec(t, 3) for t in md.get("fusion_temperatures") or []))
                else f"its own temperature {dec(md.get('fusion_temperature'), 4)} (fitted on the validation subjects)."
            )
        )
    known = md.get("finger_known")
    if modality.fingers and isinstance(known, dict) and isinstance(known.get("offsets"), dict):
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
        return or_missing(architecture, code)
    return counted_architectures(architecture, code)


def _validation_item(md: dict, sizes: dict) -> str:
    cross_validation = lookup(md, "training", "cross_validation")
    if isinstance(cross_validation, dict):
        folds, scorers = fold_layout(cross_validation)
        return (
            f"**Validation (cross-validation):** the {count(lookup(sizes, 'val'))} non-test images form "
            f"{count(folds)} folds; each member trained on the others and picked its best "
            f"epoch on its own fold, and every image is scored by {scorers} (out-of-fold). "
            "These scores fit the temperature, threshold and abstention level (their numbers are optimistic)."
        )
    return (
        f"**Validation split:** {count(lookup(sizes, 'val'))} images, used to pick the best epoch and to fit the "
        "temperature, threshold and abstention level (its numbers are optimistic)."
    )


def _additional_evaluation(md: dict, source_name: str, evaluation: dict) -> list[Block]:
    """What one evaluation measured, and on which model."""
    model_name = lookup(evaluation, "model", "name")
    eval_items = [
        f"**Source:** {esc(source_name)} (written by {code('genderclass evaluate')})",
        f"**Images evaluated:** {count(evaluation.get('n'))}; unreadable {count(evaluation.get('n_unreadable'))}; "
        f"no face found {count(evaluation.get('n_no_face'))}",
        f"**Crop mode:** {or_missing(evaluation.get('crop_mode'))}",
        f"**Model evaluated:** {or_missing(model_name)}",
    ]
    if "per_subject" in evaluation:
        eval_items.append(f"**Subjects:** {count(lookup(evaluation, 'per_subject', 'n_subjects'))}")
    if model_name and md.get("name") and model_name != md.get("name"):
        eval_items.append(
            f"**Warning:** the evaluation file was produced with model {esc(model_name)}, not {esc(md.get('name'))}."
        )
    return [("p", "**Additional evaluation.**"), ("ul", eval_items)]


def evaluation_data(md: dict, evaluations: list[Evaluation], modality: Modality) -> list[Block]:
    """The "Evaluation Data" section: the test and validation splits, and each additional evaluation."""
    sizes = lookup(md, "training", "split_sizes") or {}
    listed = lookup(md, "training", "config", "test_files")  # train --test-files
    chosen = f"the files listed in {code(public(listed))}, with their duplicates" if listed else "stratified by label"
    items = [
        f"**Test split:** {count(lookup(sizes, 'test'))} images of {dataset_ref(md)}, held out from training; "
        f"{modality.card_split_grouping}; {chosen}.",
        _validation_item(md, sizes),
        f"**Data hash:** {or_missing(lookup(md, 'training', 'data_hash'), code)}",
    ]
    if modality.fuses_per_person:
        items.append(f"**Test subjects:** {count(lookup(md, 'metrics', 'test_per_subject', 'n_subjects'))}")
    blocks: list[Block] = [("ul", items)]
    for source_name, evaluation in evaluations:
        blocks += _additional_evaluation(md, source_name, evaluation)
    return blocks


def ethics(md: dict, modality: Modality) -> list[Block]:
    """The "Ethical Considerations" section."""
    items = [
        BINARY_LABELS + " A prediction estimates how the dataset's annotators would have labelled the image.",
        "Misclassification harms: being misgendered by a machine is hurtful, above all for transgender, non-binary "
        "and gender-nonconforming people, and errors are not spread evenly across groups (see the per-group "
        "tables). Automated gender inference has been used to exclude and discriminate; this model must not be.",
        f"{modality.images_title} are biometric data: process them only with the "
        "informed consent of the person shown, and do not keep them longer than needed.",
    ]
    fmt = str(lookup(md, "training", "format") or "").lower()
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
    # the notes of the model's modality, and of the modality its training data shows (a reader of its own)
    data_modality = modality_of_format(fmt)
    items += dict.fromkeys((*modality.card_ethics, *(data_modality.card_ethics if data_modality else ())))
    return [("ul", items)]


def _age_numbers(label: str, m: dict | None) -> str | None:
    ages = lookup(m, "groups", "age")
    if not isinstance(ages, dict):
        return None
    order = [name for _, _, name in AGE_BANDS]
    bands = [b for b in order if isinstance(ages.get(b), dict)]
    bands += [b for b in ages if b not in bands and b != "_summary" and isinstance(ages.get(b), dict)]
    if not bands:
        return None
    parts = [f"{esc(b)}: {pct(ages[b].get('accuracy'))} (n={count(ages[b].get('n'))})" for b in bands]
    return f"Accuracy by age band ({esc(label)}): " + "; ".join(parts) + "."


def _children_text(md: dict, evaluations: list[Evaluation]) -> str:
    text = "Children's faces are far harder: before puberty faces differ little by sex. "
    measured = [("test", lookup(md, "metrics", "test")), *evaluations]
    numbers = [s for s in (_age_numbers(label, m) for label, m in measured) if s]
    return text + (" ".join(numbers) if numbers else f"Accuracy by age band: {NOT_MEASURED}.")


def caveats(md: dict, evaluations: list[Evaluation], modality: Modality) -> list[Block]:
    """The "Caveats and Recommendations" section."""
    items: list[str] = []
    test = lookup(md, "metrics", "test")
    if not isinstance(test, dict) or number(test.get("accuracy")) is None:
        items.append(f"Test accuracy is {NOT_MEASURED}: do not rely on this model before evaluating it.")
    fields = {  # what the modality's caveats may name (Modality.card_caveats)
        "dataset": dataset_ref(md),
        "children": _children_text(md, evaluations),
        "test_accuracy": pct(lookup(test, "accuracy")),
        "fused_accuracy": pct(lookup(md, "metrics", "test_per_subject", "accuracy")),
        "test_subjects": count(lookup(md, "metrics", "test_per_subject", "n_subjects")),
    }
    items += [template.format(**fields) for template in modality.card_caveats]
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
