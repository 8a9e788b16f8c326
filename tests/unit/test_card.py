"""Model cards: the nine sections of Mitchell et al. 2019, filled only from stored measurements."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import pytest

import genderclass.inference.bundled as bundled
from genderclass.cards import SECTIONS, render_card, render_card_html, write_card
from genderclass.cards.card import NON_COMMERCIAL, NOT_MEASURED, OUT_OF_SCOPE
from genderclass.cli.main import main

UTK_LICENCE = "UTKFace (Zhang, Song, Qi, CVPR 2017): non-commercial research purposes only."
SOCO_LICENCE = "SOCOFing (Shehu et al., 2018, arXiv:1807.10609): non-commercial research purposes only."


def _stats(n, accuracy, ci, balanced, male, female):
    return {
        "n": n,
        "accuracy": accuracy,
        "ci95": ci,
        "balanced_accuracy": balanced,
        "balanced_accuracy_ci95": ci,
        "recall": {"male": male, "female": female},
        "recall_ci95": {"male": None, "female": None},
    }


def _split(n, accuracy, balanced, auc, ece, ece_raw, brier, brier_raw, coverage, acc_cov):
    return {
        "n": n,
        "threshold": 0.5,
        "accuracy": accuracy,
        "accuracy_ci95": [0.9312, 0.9503],
        "balanced_accuracy": balanced,
        "balanced_accuracy_ci95": [0.9201, 0.9477],
        "per_class": {
            "male": {"precision": 0.95, "recall": 0.9517, "f1": 0.95, "support": 1100},
            "female": {"precision": 0.93, "recall": 0.9288, "f1": 0.93, "support": 950},
        },
        "roc_auc": auc,
        "confusion_matrix": [[1047, 53], [68, 882]],
        "brier": brier,
        "nll": 0.2,
        "ece": ece,
        "ece_uncalibrated": ece_raw,
        "brier_uncalibrated": brier_raw,
        "coverage_curve": [
            {"min_confidence": 0.5, "coverage": 1.0, "accuracy": accuracy, "n": n},
            {"min_confidence": 0.9, "coverage": 0.8123, "accuracy": 0.9876, "n": 1665},
        ],
        "coverage_at_threshold": coverage,
        "accuracy_at_threshold": acc_cov,
        "balanced_accuracy_at_threshold": acc_cov - 0.01,
        "coverage_at_threshold_by_class": {"male": coverage + 0.02, "female": coverage - 0.02},
    }


@pytest.fixture
def face_meta() -> dict:
    test = _split(2050, 0.9412, 0.9402, 0.9871, 0.0123, 0.0456, 0.0478, 0.0521, 0.8734, 0.9788)
    test["groups"] = {
        "age": {
            "0-2": _stats(120, 0.6083, [0.5190, 0.6912], 0.6001, 0.55, 0.65),
            "3-9": _stats(95, 0.7368, [0.6400, 0.8150], 0.7300, 0.70, 0.76),
            "20-29": _stats(700, 0.9614, [0.9450, 0.9733], 0.9600, 0.97, 0.95),
            "_summary": {"worst_group": "0-2", "worst_accuracy": 0.6083, "largest_gap": 0.3531, "min_n": 30},
        },
        "age_x_gender": {
            "0-2/male": _stats(60, 0.55, [0.4, 0.7], 0.55, 0.55, None),
            "_summary": {"worst_group": "0-2/male", "worst_accuracy": 0.55, "largest_gap": 0.0, "min_n": 30},
        },
        "race": {
            "white": _stats(900, 0.9522, [0.9370, 0.9640], 0.9500, 0.96, 0.94),
            "black": _stats(400, 0.9275, [0.8970, 0.9490], 0.9250, 0.95, 0.90),
            "others": _stats(12, 0.8333, [0.5520, 0.9530], 0.8300, 0.80, 0.86),
            "_summary": {"worst_group": "black", "worst_accuracy": 0.9275, "largest_gap": 0.0247, "min_n": 30},
        },
        "race_x_gender": {
            "white/female": _stats(430, 0.9400, [0.9140, 0.9580], 0.9400, None, 0.94),
            "black/female": _stats(190, 0.8947, [0.8430, 0.9310], 0.8947, None, 0.8947),
            "_summary": {
                "worst_group": "black/female",
                "worst_accuracy": 0.8947,
                "largest_gap": 0.0453,
                "min_n": 30,
            },
        },
    }
    return {
        "name": "face",
        "modality": "face",
        "format_version": 1,
        "labels": ["male", "female"],
        "positive_label": "female",
        "preprocess": {
            "modality": "face",
            "input_size": 96,
            "channels": 3,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "detect": True,
            "margin": 0.05,
            "align": True,
            "chip_pad": 0.25,
        },
        "input": {"name": "pixels", "layout": "NCHW", "dtype": "float32", "range": [0, 255]},
        "output": {"name": "logit", "meaning": "log-odds of 'female' before temperature scaling"},
        "temperature": 1.4321,
        "threshold": 0.5,
        "min_confidence": 0.7123,
        "architecture": "mobilenet_v3_small",
        "flip_tta": True,
        "training": {
            "command": "genderclass train --data /home/alice/secret/utkface --format utkface --out runs/face",
            "data": "/home/alice/secret/utkface",
            "format": "utkface",
            "data_hash": "0123456789abcdef",
            "split_sizes": {"train": 17001, "val": 2370, "test": 2050, "dropped": 4},
            "n_conflicting_groups": 2,
            "best_epoch": 23,
            "config": {"arch": "mobilenet_v3_small", "epochs": 40, "lr": 0.003, "batch_size": 64, "seed": 0},
            "data_license": UTK_LICENCE,
        },
        "metrics": {
            "validation": _split(2370, 0.9455, 0.9444, 0.9890, 0.0101, 0.0399, 0.0450, 0.0500, 0.88, 0.98),
            "test": test,
        },
        "created": "2026-01-01T00:00:00+00:00",
        "software": {"genderclass": "0.1.0", "torch": "2.x", "python": "3.11"},
    }


@pytest.fixture
def fingerprint_meta(face_meta) -> dict:
    meta = copy.deepcopy(face_meta)
    meta.update(name="fingerprint", modality="fingerprint", threshold=0.4321, flip_tta=False)
    meta["preprocess"].update(modality="fingerprint", channels=1, mean=[0.5], std=[0.25], detect=False)
    meta["training"].update(format="socofing", data_license=SOCO_LICENCE, command="genderclass train --modality fp")
    test = _split(900, 0.8111, 0.8050, 0.8822, 0.0222, 0.0333, 0.1300, 0.1400, 0.7000, 0.8700)
    test["groups"] = {
        "hand": {
            "left": _stats(450, 0.8200, [0.78, 0.85], 0.8150, 0.84, 0.79),
            "right": _stats(450, 0.8022, [0.76, 0.84], 0.7950, 0.82, 0.77),
            "_summary": {"worst_group": "right", "worst_accuracy": 0.8022, "largest_gap": 0.0178, "min_n": 30},
        },
        "finger": {
            "thumb": _stats(180, 0.8500, [0.79, 0.89], 0.8400, 0.86, 0.82),
            "_summary": {"worst_group": "thumb", "worst_accuracy": 0.85, "largest_gap": 0.0, "min_n": 30},
        },
    }
    per_subject = _split(90, 0.9111, 0.9050, 0.9600, 0.0500, 0.0600, 0.0700, 0.0800, 0.9000, 0.9500)
    per_subject["n_subjects"] = 90
    meta["metrics"] = {
        "validation": _split(800, 0.82, 0.81, 0.89, 0.02, 0.03, 0.13, 0.14, 0.7, 0.87),
        "test": test,
        "test_per_subject": per_subject,
    }
    return meta


def _headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def test_nine_sections_in_order(face_meta):
    card = render_card(face_meta)
    assert _headings(card) == list(SECTIONS)
    assert len(SECTIONS) == 9
    assert card.startswith("# Model card: face\n")


def test_stored_numbers_appear_formatted(face_meta):
    card = render_card(face_meta)
    # proportions as percentages with one decimal, intervals as "lo–hi"
    assert "94.1% (95% CI 93.1%–95.0%)" in card  # test accuracy 0.9412
    assert "94.0% (95% CI 92.0%–94.8%)" in card  # test balanced accuracy 0.9402
    assert "| 0.987 |" in card  # ROC-AUC, three decimals
    assert "| 0.0456 | 0.0123 | 0.0521 | 0.0478 |" in card  # ECE and Brier before -> after calibration
    # min_confidence, coverage, accuracy and balanced accuracy on answered, answered per label
    assert "| 0.7123 | 87.3% | 97.9% | 96.9% | male 89.3%, female 85.3% |" in card
    assert "95.2%" in card and "92.9%" in card  # recall male / female
    assert "1.4321" in card  # temperature
    assert "96×96 pixels, RGB" in card
    assert "`mobilenet_v3_small`" in card
    assert "`0123456789abcdef`" in card  # data hash
    assert "train 17,001, val 2,370, test 2,050, dropped 4" in card
    assert "**Best epoch (checkpoint's epoch counter):** 23" in card
    assert "| Labelled female | 68 | 882 |" in card  # confusion matrix
    assert "**Weights:** 32-bit float" in card
    quantized = {**face_meta, "quantization": {"type": "int8", "method": "static", "calibration": "512 training crops"}}
    assert "**Weights:** int8 (static; calibration data: 512 training crops)" in render_card(quantized)
    members = [
        {"architecture": "small_resnet", "input_size": 112},
        {"architecture": "mobilenet_v3_small", "input_size": 96, "resized_in_graph_from": 112},
    ]
    ensemble = {**face_meta, "training": {**face_meta["training"], "members": members}}
    assert (
        "**Ensemble members (mean logit):** `small_resnet` at 112 px; `mobilenet_v3_small` at 96 px "
        "(resized in the graph from 112 px)" in render_card(ensemble)
    )
    assert "Hyper-parameters (of the member with the largest input)" in render_card(ensemble)
    assert "Ensemble members" not in card
    # the auxiliary task's weight is listed only when there is an auxiliary task
    config = face_meta["training"]["config"]
    for aux_task, listed in (("", False), ("age", True)):
        training = {**face_meta["training"], "config": {**config, "aux_task": aux_task, "aux_weight": 0.5}}
        text = render_card({**face_meta, "training": training})
        assert ("`aux_task=age`, `aux_weight=0.5`" in text) is listed and ("aux_weight" in text) is listed
    training = {**face_meta["training"], "config": {**config, "monitor": "val_auc"}}
    assert "monitor=" not in card and "`monitor=val_auc`" in render_card({**face_meta, "training": training})
    # group balancing and the face augmentations are listed when they were on
    off = {"balance": "class", "balance_by": "", "balance_power": 1.0, "outside_fill": 0.0, "hair_erase": 0.0,
           "yaw_warp": 0.0, "val_files": ""}  # fmt: skip
    text = render_card({**face_meta, "training": {**face_meta["training"], "config": {**config, **off}}})
    assert "`balance=class`" in text and not any(f"`{k}=" in text for k in off if k != "balance")
    on = {"balance": "group", "balance_by": "age,race", "balance_power": 0.5, "outside_fill": 0.5,
          "hair_erase": 0.3, "yaw_warp": 25.0, "val_files": "experiments/utkface.val_files.txt"}  # fmt: skip
    text = render_card({**face_meta, "training": {**face_meta["training"], "config": {**config, **on}}})
    assert "`balance=group`, `balance_by=age,race`, `balance_power=0.5`, `outside_fill=0.5`, `hair_erase=0.3`, " \
        "`yaw_warp=25.0`" in text and "`val_files=" in text and "val_fraction" not in text  # fmt: skip
    # a listed test split (train --test-files) replaces test_fraction
    assert "stratified by label." in card and "test_files" not in card
    training = {**face_meta["training"], "config": {**config, "test_fraction": 0.15}}
    assert "`test_fraction=0.15`" in render_card({**face_meta, "training": training})
    training["config"]["test_files"] = "/home/me/face.test_files.txt"
    text = render_card({**face_meta, "training": training})
    assert "`test_files=…/face.test_files.txt`" in text and "test_fraction" not in text
    assert "the files listed in `…/face.test_files.txt`, with their duplicates." in text
    # cross-validation members: the folds replace val_fraction, and validation is described as out-of-fold
    assert "folds=" not in card and "out-of-fold" not in card and "**Validation split:** 2,370 images" in card
    folds = [
        {"architecture": "small_resnet", "input_size": 96, "fold": k, "folds": 2, "best_epoch": 9 + k} for k in (0, 1)
    ]
    training = {**face_meta["training"], "config": {**config, "folds": 2, "fold": 0}, "members": folds,
                "cross_validation": {"members": 2, "validation_files_per_member": [1185, 1185]}}  # fmt: skip
    text = render_card({**face_meta, "training": training})
    assert "`folds=2`" in text and "val_fraction" not in text
    assert (
        "`small_resnet` at 96 px, validated on fold 0 of 2, best epoch counter 9; "
        "`small_resnet` at 96 px, validated on fold 1 of 2, best epoch counter 10"
    ) in text
    assert "**Best epoch" not in text  # an ensemble has one per member
    assert "the 2,370 non-test images form 2 folds" in text and "(out-of-fold)" in text
    assert "scored by the member that held it out" in text
    # two recipes on the same folds: K stays 2, each image is scored by two members, repeats counted
    training["cross_validation"] = {"folds": 2, "members": 4, "members_per_validation_file": 2}
    text = render_card({**face_meta, "training": training, "architecture": " + ".join(["small_resnet"] * 4)})
    assert "the 2,370 non-test images form 2 folds" in text
    assert "scored by the mean logit of the 2 members that held it out (out-of-fold)" in text
    assert "architecture 4 × `small_resnet`" in text
    mixed = render_card({**face_meta, "architecture": "small_resnet + mobilenet_v3_small + small_resnet"})
    assert "architecture 2 × `small_resnet` + `mobilenet_v3_small`" in mixed
    training["split_sizes"] = {"train": 0, "val": 2370, "test": 2050, "dropped": 4}
    training["cross_validation"]["validation_files_per_member"] = [1180, 1190]
    text = render_card({**face_meta, "training": training})
    assert "**Split sizes:** 2-fold cross-validation over 2,370 (each member validates on 1,180–1,190 and trains on " \
           "the rest), test 2,050, dropped 4" in text  # fmt: skip
    del training["cross_validation"]["validation_files_per_member"]  # partial metadata still renders
    assert "2-fold cross-validation over 2,370" in render_card({**face_meta, "training": training})


def test_group_tables_and_summaries(face_meta):
    card = render_card(face_meta)
    assert "| white | 900 | 95.2% | 93.7%–96.4% | 95.0% | 96.0% | 94.0% |" in card
    assert "| others | 12 † | 83.3% |" in card  # small group flagged
    assert "| white/female | 430 | 94.0% | 91.4%–95.8% | 94.0% | n/a | 94.0% |" in card
    assert (
        "Worst group (n ≥ 30): **black** with accuracy 92.8%; largest gap between groups: 2.5 percentage points."
        in card
    )
    assert "**black/female** with accuracy 89.5%" in card
    assert "By race (as annotated) × labelled gender, test." in card
    # children: the age-band numbers are cited in the caveats
    caveats = card.split("## Caveats and Recommendations")[1]
    assert "Children's faces are far harder" in caveats
    assert "0-2: 60.8% (n=120); 3-9: 73.7% (n=95); 20-29: 96.1% (n=700)" in caveats


def test_licence_and_intended_use(face_meta):
    card = render_card(face_meta)
    assert f"**Licence of the training data:** {UTK_LICENCE}" in card
    assert NON_COMMERCIAL in card
    assert "non-commercial research use only" in card
    assert OUT_OF_SCOPE in card
    assert OUT_OF_SCOPE.startswith("Out of scope: surveillance, identification")
    assert "do not capture gender identity" in card
    assert "opt-in applications" in card
    assert "estimated by an algorithm and then checked by human annotators" in card
    assert "other cameras" in card


def test_no_machine_paths_in_card(face_meta):
    card = render_card(face_meta)
    assert "/home/alice" not in card
    assert "`genderclass train --data …/utkface --format utkface --out runs/face`" in card


def test_fingerprint_variant(fingerprint_meta):
    card = render_card(fingerprint_meta)
    assert _headings(card) == list(SECTIONS)
    assert "| Test, fused per subject | 90 | 91.1% (95% CI 93.1%–95.0%)" in card
    assert "subject-disjoint" in card
    assert "single population" in card
    assert "fused over all prints of a person 91.1% on 90 test subjects" in card
    assert "96×96 pixels, grayscale" in card
    assert "0.4321" in card  # fingerprint threshold chosen on validation
    assert SOCO_LICENCE in card
    assert "| left | 450 | 82.0% |" in card
    assert "Worst group (n ≥ 30): **right** with accuracy 80.2%" in card
    assert "Children" not in card


def test_prints_per_person_table(fingerprint_meta):
    fingerprint_meta["fusion_temperatures"] = [0.81, 0.55, 0.47]
    fingerprint_meta["metrics"]["test_by_prints"] = [
        {"prints": 1, "n_subjects": 82, "n_fused": 1640, "balanced_accuracy": 0.7012, "roc_auc": 0.7901, "ece": 0.031},
        {"prints": 3, "n_subjects": 82, "n_fused": 1640, "balanced_accuracy": 0.7425, "roc_auc": 0.8412, "ece": 0.044},
    ]
    card = render_card(fingerprint_meta, {"per_subject_by_prints": [{"prints": 2, "n_subjects": 7, "roc_auc": 0.5}]})
    assert "**Prints per person, test:**" in card
    assert "| Prints given | People | Balanced accuracy | ROC-AUC | ECE |" in card
    assert "| 1 | 82 | 70.1% | 0.790 | 3.1% |" in card and "| 3 | 82 | 74.2% | 0.841 | 4.4% |" in card
    assert "| 2 | 7 | not measured | 0.500 | not measured |" in card  # the evaluation's own table, as given
    assert (
        "subsets of the validation subjects for k prints (k = 1, 2, …: 0.810, 0.550, 0.470; more prints: the last)"
        in card
    )
    del fingerprint_meta["metrics"]["test_by_prints"]
    assert "Prints per person" not in render_card(fingerprint_meta)


def test_missing_metrics_say_not_measured(face_meta):
    # nothing at all
    empty = render_card({})
    assert _headings(empty) == list(SECTIONS)
    assert NOT_MEASURED in empty
    # metrics removed, groups without summaries, a half-filled split
    meta = copy.deepcopy(face_meta)
    del meta["metrics"]["validation"]
    test = meta["metrics"]["test"]
    for key in ("accuracy_ci95", "roc_auc", "ece_uncalibrated", "coverage_at_threshold", "coverage_curve"):
        del test[key]
    test["accuracy"] = float("nan")
    del test["groups"]["race"]["_summary"]
    test["groups"]["age"] = {"_summary": {"worst_group": None, "worst_accuracy": None, "largest_gap": None}}
    del meta["temperature"]
    del meta["training"]["best_epoch"]
    card = render_card(meta)
    assert "| Validation (model selection, calibration) | not measured | not measured |" in card
    assert "| Test (held out) | 2,050 | not measured |" in card
    assert "**Calibration temperature:** not measured" in card
    assert "**Best epoch (checkpoint's epoch counter):** not measured" in card
    assert "Coverage curve (test): not measured." in card
    assert "Worst group and largest gap: not measured." in card
    assert "Accuracy by age band: not measured." in card
    assert "Test accuracy is not measured" in card
    # fingerprint without per-subject metrics
    fp = render_card({"modality": "fingerprint", "metrics": {"test": {"accuracy": 0.8}}})
    assert "| Test, fused per subject | not measured |" in fp
    assert "finger position known" not in fp.lower()


def test_a_card_names_the_modalities_when_the_metadata_names_another():
    """Each modality has its own card text: metadata of no known modality has none to render."""
    with pytest.raises(ValueError, match=r"unknown modality 'iris'; expected one of \('face', 'fingerprint'\)"):
        render_card({"modality": "iris", "metrics": {"test": {"accuracy": 0.8}}})
    evaluated = {"model": {"modality": "fingerprint"}}
    assert render_card({}, evaluated) == render_card({"modality": "fingerprint"}, evaluated)  # else the evaluation's


def test_finger_position_known_is_described_and_measured():
    known = {"offsets": {"thumb": -0.63, "little": 0.62}, "temperature": 0.71, "threshold": 0.52, "min_confidence": 0.6}
    metrics = {"test": {"accuracy": 0.8}, "test_finger_known": {"n": 820, "balanced_accuracy": 0.7512}}
    card = render_card({"modality": "fingerprint", "finger_known": known, "metrics": metrics})
    assert "| Test, finger position known | 820 |" in card and "75.1%" in card
    assert "(offsets thumb -0.63, little 0.62, fitted on validation, out-of-fold for a cross-validation" in card
    assert "(temperature 0.7100, threshold 0.5200, min_confidence 0.6000)" in card
    evaluation = {"n": 40, "balanced_accuracy": 0.7, "finger_known": {"n": 40, "balanced_accuracy": 0.75}}
    assert "| Evaluation (mine), finger position known | 40 |" in render_card(
        {"modality": "fingerprint", "finger_known": known, "metrics": metrics}, evaluation, evaluation_name="mine"
    )


def test_evaluation_json_is_reported(face_meta):
    evaluation = copy.deepcopy(face_meta["metrics"]["test"])
    evaluation.update(accuracy=0.8766, model={"name": "face", "modality": "face"}, crop_mode="detect", n=333)
    evaluation.update(n_unreadable=1, n_no_face=7, min_confidence=0.7123)
    evaluation["groups"]["age"]["0-2"]["accuracy"] = 0.5432
    card = render_card(face_meta, evaluation, evaluation_name="metrics.json")
    assert "| Evaluation (metrics.json) | 333 | 87.7% (95% CI 93.1%–95.0%)" in card
    assert "unreadable 1; no face found 7" in card
    assert "0-2: 54.3% (n=120)" in card  # the evaluation's age bands are cited too
    assert "By race (as annotated), metrics.json." in card


def test_html_is_escaped_and_complete(face_meta):
    meta = copy.deepcopy(face_meta)
    meta["name"] = "face<script>alert(1)</script>"
    meta["metrics"]["test"]["groups"]["race"]["<b>x</b>"] = _stats(40, 0.9, [0.8, 0.95], 0.9, 0.9, 0.9)
    page = render_card_html(meta)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert html.escape("face<script>alert(1)</script>", quote=False) in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    for title in SECTIONS:
        assert f">{title}</h2>" in page
    assert "<table>" in page and "<style>" in page
    assert '<a href="https://arxiv.org/abs/1810.03993">' in page
    assert "<strong>black</strong>" in page
    # the Markdown keeps the same text escaped for Markdown
    assert r"face\<script\>alert(1)\</script\>" in render_card(meta)


def test_nul_characters_in_the_data_are_rendered_not_obeyed(face_meta):
    # NUL marks the HTML renderer's own fragments: one in a stored value (a group name from a CSV
    # manifest, say) raised IndexError or hung the card forever
    meta = copy.deepcopy(face_meta)
    meta["name"] = "face\x0099\x00"
    meta["metrics"]["test"]["groups"]["race"]["nul\x00group"] = _stats(40, 0.9, [0.8, 0.95], 0.9, 0.9, 0.9)
    page = render_card_html(meta)
    assert "\x00" not in page
    assert "face\ufffd99\ufffd" in page and "nul\ufffdgroup" in page


def test_markdown_carries_no_raw_html_from_the_metadata(face_meta):
    # Markdown renderers pass raw HTML through: every stored value is escaped or in a code span
    payload = "<img src=x onerror=alert(1)>"
    meta = copy.deepcopy(face_meta)
    meta["preprocess"]["channels"] = payload
    meta["training"]["members"] = [
        {"architecture": "small_resnet", "input_size": 96, "fold": payload, "folds": payload}
    ]
    card = render_card(meta)
    outside_code = re.sub(r"`[^`]*`", "", card)
    assert not re.search(r"(?<!\\)<img", outside_code)
    assert r"\<img src=x onerror=alert(1)\> channels" in card


@pytest.fixture
def model_files(tmp_path, face_meta) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "face.onnx").write_bytes(b"not a real onnx model")  # the card never opens it
    (folder / "face.json").write_text(json.dumps(face_meta))
    return folder / "face.onnx"


def _run(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_markdown_and_html(capsys, tmp_path, model_files):
    code, out, _ = _run(capsys, ["card", "--model", str(model_files), "--out", str(tmp_path / "c.md")])
    assert code == 0
    paths = json.loads(out)
    assert paths == {"markdown": str(tmp_path / "c.md"), "html": str(tmp_path / "c.html")}
    markdown = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert _headings(markdown) == list(SECTIONS)
    assert "94.1%" in markdown
    page = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "<h2" in page and "94.1%" in page


def test_cli_default_output_next_to_model(capsys, model_files):
    code, out, _ = _run(capsys, ["card", "--model", str(model_files.with_suffix(".json"))])
    assert code == 0
    assert json.loads(out)["markdown"] == str(model_files.parent / "face_card.md")
    assert (model_files.parent / "face_card.md").is_file()
    assert (model_files.parent / "face_card.html").is_file()


def test_cli_with_evaluation(capsys, tmp_path, model_files, face_meta):
    evaluation = dict(face_meta["metrics"]["test"], model={"name": "face", "modality": "face"}, n=321)
    eval_path = tmp_path / "eval" / "metrics.json"
    eval_path.parent.mkdir()
    eval_path.write_text(json.dumps(evaluation))
    argv = ["card", "--model", str(model_files.parent), "--evaluation", str(eval_path), "--out", str(tmp_path)]
    code, out, _ = _run(capsys, argv)
    assert code == 0
    markdown = Path(json.loads(out)["markdown"]).read_text(encoding="utf-8")
    assert Path(json.loads(out)["markdown"]).name == "face_card.md"
    assert "| Evaluation (metrics.json) | 321 |" in markdown
    assert str(tmp_path) not in markdown  # file names only, no machine paths


def test_cli_usage_errors(capsys, caplog, tmp_path, model_files):
    code, out, _ = _run(capsys, ["card", "--model", str(tmp_path / "missing.onnx")])
    assert code == 2 and out == "" and "not found" in caplog.text
    caplog.clear()
    code, out, _ = _run(capsys, ["card", "--model", str(model_files), "--modality", "fingerprint"])
    assert code == 2 and out == "" and "face model" in caplog.text
    caplog.clear()
    bad = tmp_path / "fp_metrics.json"
    bad.write_text(json.dumps({"model": {"modality": "fingerprint"}}))
    code, out, _ = _run(capsys, ["card", "--model", str(model_files), "--evaluation", str(bad)])
    assert code == 2 and out == "" and "evaluates a fingerprint model" in caplog.text
    assert not (model_files.parent / "face_card.md").exists()


def test_bundled_model_default(monkeypatch, tmp_path, fingerprint_meta):
    (tmp_path / "fingerprint.json").write_text(json.dumps(fingerprint_meta))
    (tmp_path / "fingerprint.onnx").write_bytes(b"")  # only its presence matters: the card reads the JSON
    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path)
    elsewhere = tmp_path / "here"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    md_path, html_path = write_card(None, None, modality="fingerprint")
    # the bundled model's own card is never overwritten by default: the new one goes to the current folder
    assert md_path.resolve() == elsewhere.resolve() / "fingerprint_card.md"
    assert html_path.resolve() == elsewhere.resolve() / "fingerprint_card.html"
    assert not (tmp_path / "fingerprint_card.md").exists()
    # the same when the package's model is named explicitly
    md_path, _ = write_card(tmp_path / "fingerprint.onnx", None, modality="fingerprint")
    assert md_path.resolve() == elsewhere.resolve() / "fingerprint_card.md"
    assert not (tmp_path / "fingerprint_card.md").exists()
    assert "Test, fused per subject" in md_path.read_text(encoding="utf-8")
    with pytest.raises(FileNotFoundError):
        write_card(None, None, modality="face")


def test_cli_evaluation_alone_picks_the_bundled_model_it_evaluated(
    capsys, monkeypatch, tmp_path, face_meta, fingerprint_meta
):
    """What every card advises, ``genderclass card --evaluation metrics.json``, works for the fingerprint card
    too: without --model or --modality, the card is for the bundled model of the evaluated modality."""
    for modality, meta in (("face", face_meta), ("fingerprint", fingerprint_meta)):
        (tmp_path / f"{modality}.json").write_text(json.dumps(meta))
        (tmp_path / f"{modality}.onnx").write_bytes(b"")  # only its presence matters: the card reads the JSON
    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path)
    evaluation = dict(fingerprint_meta["metrics"]["test"], model={"name": "fingerprint", "modality": "fingerprint"})
    eval_path = tmp_path / "metrics.json"
    eval_path.write_text(json.dumps(evaluation))
    code, out, _ = _run(capsys, ["card", "--evaluation", str(eval_path), "--out", str(tmp_path / "cards") + "/"])
    assert code == 0
    markdown = Path(json.loads(out)["markdown"])
    assert markdown.name == "fingerprint_card.md"
    assert "Evaluation (metrics.json)" in markdown.read_text(encoding="utf-8")


@pytest.fixture
def celeba_metrics(face_meta) -> dict:
    """A metrics.json as ``genderclass evaluate`` writes it for face crops of another dataset: pose and
    face-size slices, per-file lists, the model's summary and the data measured."""
    evaluation = copy.deepcopy(face_meta["metrics"]["test"])
    evaluation["groups"] = {
        "head_yaw": {
            "0-15°": _stats(250, 0.9720, [0.9440, 0.9860], 0.9710, 0.96, 0.98),
            "≥45°": _stats(19, 0.7368, [0.5120, 0.8820], 0.7300, 0.70, 0.76),
            "_summary": {"worst_group": "0-15°", "worst_accuracy": 0.972, "largest_gap": 0.0, "min_n": 30},
        },
        "face_size": {
            "48-96 px": _stats(64, 0.9063, [0.8100, 0.9560], 0.9050, 0.92, 0.89),
            "_summary": {"worst_group": "48-96 px", "worst_accuracy": 0.9063, "largest_gap": 0.0, "min_n": 30},
        },
    }
    evaluation.update(n=333, accuracy=0.8766, crop_mode="detect", n_unreadable=1, n_no_face=7)
    evaluation["model"] = {"name": "face", "modality": "face", "path": "/home/alice/face.onnx", "test_groups": {}}
    evaluation["data"] = {"data": "/data/celeba_faces/labels.csv", "format": "csv", "files": "all"}
    evaluation["predictions"] = [{"path": "/data/celeba_faces/1.jpg", "label": "male", "p_female": 0.1}]
    evaluation["unreadable"] = {"/data/celeba_faces/2.jpg": "truncated"}
    evaluation["no_face"] = ["/data/celeba_faces/3.jpg"]
    return evaluation


def test_a_stored_evaluation_renders_as_a_given_one(face_meta, celeba_metrics):
    from genderclass.cards.evaluations import evaluation_entry

    stored = {**face_meta, "evaluations": [evaluation_entry(celeba_metrics, "celeba")]}
    card = render_card(stored)
    given = render_card(face_meta, celeba_metrics, evaluation_name="celeba")
    differing = [(a, b) for a, b in zip(card.splitlines(), given.splitlines(), strict=True) if a != b]
    assert len(differing) == 1  # only the intro names the file given besides the metadata
    assert "stored metadata and celeba, and every" in differing[0][1]
    assert "stored metadata, and every" in differing[0][0]
    assert "| Evaluation (celeba) | 333 | 87.7% (95% CI 93.1%–95.0%)" in card
    assert "**Source:** celeba (written by `genderclass evaluate`)" in card
    assert "unreadable 1; no face found 7" in card
    assert "**By head yaw, celeba.**" in card and "**By face size, celeba.**" in card
    assert "| 0-15° | 250 | 97.2% | 94.4%–98.6% | 97.1% | 96.0% | 98.0% |" in card
    assert "| ≥45° | 19 † | 73.7% |" in card and "| 48-96 px | 64 | 90.6% |" in card
    assert "Measured per group in this card: age band, age band × labelled gender" in card
    assert "head yaw, face size." in card  # the stored evaluation's slices are evaluation factors
    assert "Accuracy by age band (celeba)" not in card  # no age bands measured there
    assert "celeba" in render_card_html(stored) and "/data/" not in card and "/home/alice" not in card


def test_stored_evaluations_come_before_the_given_one_each_under_its_name(face_meta, celeba_metrics):
    from genderclass.cards.evaluations import evaluation_entry

    other = dict(celeba_metrics, n=77)
    entries = [evaluation_entry(celeba_metrics, "celeba"), evaluation_entry(other, "lfw")]
    card = render_card({**face_meta, "evaluations": entries}, dict(celeba_metrics, n=55), evaluation_name="m.json")
    rows = re.findall(r"^\| Evaluation \((.+?)\) \| ([\d,]+) \|", card, flags=re.MULTILINE)
    assert rows[:3] == [("celeba", "333"), ("lfw", "77"), ("m.json", "55")]  # the overall table, in order
    assert card.count("**Additional evaluation.**") == 3
    assert card.index("**By head yaw, celeba.**") < card.index("**By head yaw, lfw.**")
    assert card.index("**By head yaw, lfw.**") < card.index("**By head yaw, m.json.**")


def test_metadata_without_evaluations_renders_as_before(face_meta):
    assert "evaluations" not in face_meta
    card = render_card(face_meta)
    assert render_card({**face_meta, "evaluations": []}) == card
    assert "Evaluation (" not in card and "Additional evaluation" not in card
    broken = [{"name": "no metrics"}, "not an entry", {"metrics": {"n": 5}}]
    assert render_card({**face_meta, "evaluations": broken}) == card  # unreadable entries are left out


def test_an_entry_keeps_what_the_card_shows_and_where_it_was_measured(celeba_metrics):
    from genderclass.cards.evaluations import evaluation_entry

    entry = evaluation_entry(celeba_metrics, "celeba")
    assert list(entry) == ["name", "data", "metrics"]
    assert entry["data"] == {"data": "/data/celeba_faces/labels.csv", "format": "csv", "files": "all"}
    metrics = entry["metrics"]
    assert not {"predictions", "unreadable", "no_face", "data"} & set(metrics)  # per file, or stored beside
    assert metrics["model"] == {"name": "face", "modality": "face"}  # no machine path
    assert (
        metrics["groups"] == celeba_metrics["groups"] and metrics["coverage_curve"] == celeba_metrics["coverage_curve"]
    )
    assert metrics["n_no_face"] == 7 and metrics["crop_mode"] == "detect"
    assert "data" not in evaluation_entry({"n": 3, "data": {}}, "x")


def test_storing_replaces_a_name_in_place_and_keeps_every_other_entry():
    from genderclass.cards.evaluations import with_evaluation

    entry = {"name": "a", "metrics": {"n": 1}}
    assert with_evaluation({"evaluations": None}, entry)["evaluations"] == [entry]  # as migrate reads a null
    stored = [{"name": "b", "metrics": {}}, {"name": "a", "metrics": {"n": 0}}, "a note", {"name": "a"}]
    metadata = {"name": "face", "evaluations": stored}
    assert with_evaluation(metadata, entry) == {"name": "face", "evaluations": [stored[0], entry, "a note"]}
    assert metadata["evaluations"] == stored  # a copy
    with pytest.raises(ValueError, match="m.json has an 'evaluations' that is not a list"):
        with_evaluation({"evaluations": {"a": 1}}, entry, "m.json")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"data": "/data/celeba_faces/labels.csv", "format": "csv"}, "celeba_faces"),  # a manifest's folder
        ({"data": "../shared/datasets/utkface/", "format": "utkface"}, "utkface"),
        ({"data": "labels.csv", "format": "csv"}, "eval-x"),  # no folder named: that of metrics.json
        ({}, "eval-x"),
    ],
)
def test_the_default_name_is_the_data_folder(tmp_path, data, name):
    from genderclass.cards.evaluations import default_name

    assert default_name({"data": data}, tmp_path / "eval-x" / "metrics.json") == name


def _store(capsys, model: Path, evaluation: dict, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    eval_path = tmp_path / "eval-run" / "metrics.json"
    eval_path.parent.mkdir(exist_ok=True)
    eval_path.write_text(json.dumps(evaluation))
    argv = ["card", "--model", str(model), "--evaluation", str(eval_path), "--store", *extra]
    code, out, _ = _run(capsys, argv)
    return code, json.loads(out) if out else {}


def test_cli_store_then_the_metadata_alone_renders_it(capsys, tmp_path, model_files, celeba_metrics):
    code, out = _store(capsys, model_files, celeba_metrics, tmp_path)
    meta_path = model_files.with_suffix(".json")
    assert code == 0 and out["stored"] == {"metadata": str(meta_path), "name": "celeba_faces"}
    assert not list(meta_path.parent.glob(".*.partial"))
    stored = json.loads(meta_path.read_text())
    assert [e["name"] for e in stored["evaluations"]] == ["celeba_faces"]
    assert stored["evaluations"][0]["metrics"]["groups"]["head_yaw"]["0-15°"]["n"] == 250
    assert "predictions" not in stored["evaluations"][0]["metrics"]
    # the card written with --store, and one rendered later from the metadata alone, show it once
    for markdown in (Path(out["markdown"]).read_text(encoding="utf-8"), render_card(stored)):
        assert markdown.count("| Evaluation (celeba\\_faces) | 333 |") == 1
        assert "| 0-15° | 250 | 97.2% | 94.4%–98.6% |" in markdown and "**By face size, celeba\\_faces.**" in markdown
    code, out, _ = _run(capsys, ["card", "--model", str(model_files), "--out", str(tmp_path / "later.md")])
    assert code == 0 and "| Evaluation (celeba\\_faces) | 333 |" in (tmp_path / "later.md").read_text()


def test_cli_store_replaces_an_entry_of_the_same_name_and_adds_another(
    capsys, tmp_path, model_files, face_meta, celeba_metrics
):
    meta_path = model_files.with_suffix(".json")
    assert _store(capsys, model_files, celeba_metrics, tmp_path)[0] == 0
    assert _store(capsys, model_files, dict(celeba_metrics, n=444), tmp_path, "--name", "lfw")[0] == 0
    assert _store(capsys, model_files, dict(celeba_metrics, n=555), tmp_path)[0] == 0  # celeba_faces again
    stored = json.loads(meta_path.read_text())
    assert [(e["name"], e["metrics"]["n"]) for e in stored["evaluations"]] == [("celeba_faces", 555), ("lfw", 444)]
    card = render_card(stored)
    assert "| Evaluation (celeba\\_faces) | 555 |" in card and "| Evaluation (lfw) | 444 |" in card
    assert "| 333 |" not in card
    assert {k: v for k, v in stored.items() if k != "evaluations"} == face_meta  # the rest kept as it was


def test_cli_store_refuses_without_touching_the_metadata(capsys, caplog, tmp_path, model_files, celeba_metrics):
    meta_path = model_files.with_suffix(".json")
    before = meta_path.read_bytes()
    fingerprint_eval = dict(celeba_metrics, model={"name": "fingerprint", "modality": "fingerprint"})
    code, out = _store(capsys, model_files, fingerprint_eval, tmp_path)
    assert code == 2 and out == {} and "evaluates a fingerprint model" in caplog.text
    code, out = _store(capsys, model_files, {"model": {"modality": "face"}}, tmp_path)  # no evaluation in it
    assert code == 2 and out == {} and "holds no evaluation" in caplog.text
    code, out = _store(capsys, model_files, celeba_metrics, tmp_path, "--name", "  ")
    assert code == 2 and "--name is empty" in caplog.text
    caplog.clear()
    eval_path = tmp_path / "eval-run" / "metrics.json"
    for argv, message in (
        (["card", "--evaluation", str(eval_path), "--store"], "give --evaluation and --model"),
        (["card", "--model", str(model_files), "--store"], "give --evaluation and --model"),
        (["card", "--model", str(model_files), "--evaluation", str(eval_path), "--name", "x"], "give --store too"),
    ):
        code, out, _ = _run(capsys, argv)
        assert code == 2 and out == "" and message in caplog.text
    assert meta_path.read_bytes() == before
    assert sorted(p.name for p in meta_path.parent.iterdir()) == ["face.json", "face.onnx"]  # no card, no temp file


def _card_with_training(face_meta: dict, **training: object) -> str:
    """The card of ``face_meta`` with ``training``'s fields added to its training record."""
    return render_card({**face_meta, "training": {**face_meta["training"], **training}})


def _card_with_member(face_meta: dict, **first_member: object) -> str:
    """The card of a two-member ensemble whose first member carries ``first_member``'s fields."""
    members = [{"architecture": "small_resnet", "input_size": 128, **first_member}]
    members.append({"architecture": "small_resnet", "input_size": 128})
    return _card_with_training(face_meta, members=members)


def test_earlier_stages_are_listed(face_meta):
    stages = [
        {"checkpoint": "runs/s1/checkpoints/best.ckpt", "command": "genderclass train --out runs/s1", "epoch": 21},
        {"checkpoint": "runs/s2/checkpoints/best.ckpt", "command": None, "epoch": 19},
    ]
    card = _card_with_training(face_meta, earlier_stages=stages)
    assert (
        "**Earlier stages (oldest first; each fine-tuned from the one before):** `genderclass train --out runs/s1` "
        "(checkpoint `runs/s1/checkpoints/best.ckpt`, epoch counter 21); then command not recorded "
        "(checkpoint `runs/s2/checkpoints/best.ckpt`, epoch counter 19)"
    ) in card
    assert "**Training command (last stage):**" in card
    plain = render_card(face_meta)
    assert "Earlier stages" not in plain and "**Training command:**" in plain
    text = _card_with_member(face_meta, earlier_stages=stages[:1])
    assert "`small_resnet` at 128 px, fine-tuned from: `genderclass train --out runs/s1`" in text


def test_teachers_are_listed_with_their_stages(face_meta):
    def stage(name: str, epoch: int) -> dict:
        return {
            "checkpoint": f"runs/{name}/checkpoints/best.ckpt",
            "command": f"genderclass train --out runs/{name}",
            "epoch": epoch,
        }

    teachers = [[stage("a1", 21), stage("a4", 11)], [stage("b4", 10)]]
    card = _card_with_training(face_meta, teachers=teachers)
    assert (
        "**Distilled from** the mean logit of 2 networks: (1) `genderclass train --out runs/a1` (checkpoint "
        "`runs/a1/checkpoints/best.ckpt`, epoch counter 21); then `genderclass train --out runs/a4` (checkpoint "
        "`runs/a4/checkpoints/best.ckpt`, epoch counter 11); (2) `genderclass train --out runs/b4`"
    ) in card
    assert "Distilled from" not in render_card(face_meta)
    text = _card_with_member(face_meta, teachers=teachers[1:])
    assert (
        "`small_resnet` at 128 px, taught by the mean logit of 1 network: (1) `genderclass train --out runs/b4`" in text
    )


@pytest.mark.parametrize("modality", ["face", "fingerprint"])
def test_shipped_cards_are_what_the_stored_metadata_renders(modality):
    """The cards in the package are generated, never edited: rendering the bundled metadata again
    gives them byte for byte (a change to the card code must regenerate them)."""
    from genderclass.cards.card import card_blocks, to_html, to_markdown
    from genderclass.inference.bundled import bundled_models, models_dir
    from genderclass.inference.classifier import model_files

    if modality not in bundled_models():
        pytest.skip(f"no bundled {modality} model")
    _, metadata = model_files(modality=modality)
    blocks = card_blocks(metadata)
    assert to_markdown(blocks) == (models_dir() / f"{modality}_card.md").read_text(encoding="utf-8")
    assert to_html(blocks) == (models_dir() / f"{modality}_card.html").read_text(encoding="utf-8")


def test_the_fingerprint_card_says_one_print_keeps_the_per_print_temperature():
    """As predict --fuse does (classifier.fusion_temperature_for): a mean of one print is that print."""
    from genderclass.cards.card import card_blocks, to_markdown
    from genderclass.inference.bundled import bundled_models
    from genderclass.inference.classifier import model_files

    if "fingerprint" not in bundled_models():
        pytest.skip("no bundled fingerprint model")
    _, metadata = model_files(modality="fingerprint")
    text = to_markdown(card_blocks(metadata))
    assert f"keeps the per-print temperature {metadata['temperature']:.4f}" in text
