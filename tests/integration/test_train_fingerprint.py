"""End to end for fingerprints from a CSV manifest with a subject column: subjects (and subjects
linked by byte-identical prints) never straddle the split; contradictory duplicates are dropped."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from genderclass.evaluation.fusion import largest_count
from genderclass.evaluation.groups import group_offsets, remove_offsets

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow

from genderclass.data.readers import FINGERS  # noqa: E402
from genderclass.evaluation import metrics as M  # noqa: E402


@pytest.fixture(scope="module")
def fingerprint_run(tmp_path_factory, fingerprint_csv_dataset, cache_dir, run_cli, train_args) -> Path:
    out = tmp_path_factory.mktemp("runs") / "fp"
    argv = ["train", "--modality", "fingerprint", "--data", fingerprint_csv_dataset["manifest"], "--format", "csv",
            "--out", out, "--epochs", "2", "--val-fraction", "0.2", "--test-fraction", "0.2",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    code, stdout = run_cli(argv)
    assert code == 0
    assert json.loads(stdout)["model"] == str(out / "export" / "fingerprint.onnx")
    return out


def _split_by_subject(run: Path, dataset: dict) -> dict[str, set[str]]:
    subject_of = {Path(r["path"]).name: r["subject"] for r in dataset["rows"]}
    with (run / "split.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(dataset["rows"])
    sides: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        sides[subject_of[Path(row["path"]).name]].add(row["split"])
    return sides


def test_subjects_split_disjointly(fingerprint_run, fingerprint_csv_dataset):
    sides = _split_by_subject(fingerprint_run, fingerprint_csv_dataset)
    assert all(len(v) == 1 for v in sides.values()), {k: v for k, v in sides.items() if len(v) > 1}
    # subjects linked by a byte-identical print land on the same side
    assert sides["m_dup_a"] == sides["m_dup_b"]
    # a print labelled male under one subject and female under another: both subjects are dropped
    assert sides["m_conf"] == sides["f_conf"] == {"dropped"}
    kept = {s for s, v in sides.items() if v != {"dropped"}}
    assert len(kept) == len(sides) - 2
    labels = fingerprint_csv_dataset["subjects"]
    for name in ("val", "test"):
        assert {labels[s] for s, v in sides.items() if v == {name}} == {0, 1}, name


def test_fingerprint_export_metadata(fingerprint_run, fingerprint_csv_dataset):
    meta = json.loads((fingerprint_run / "export" / "fingerprint.json").read_text())
    config = json.loads((fingerprint_run / "config.json").read_text())
    assert meta["modality"] == "fingerprint" and meta["flip_tta"] is False
    assert meta["preprocess"]["channels"] == 1 and meta["preprocess"]["detect"] is False
    assert config["train"]["balance"] == "class"
    assert config["data"]["n_conflicting_groups"] == 1
    assert config["data"]["split_sizes"]["dropped"] == 8  # both subjects of the contradictory pair
    assert 0 < meta["threshold"] < 1
    assert meta["training"]["format"] == "csv"
    sides = _split_by_subject(fingerprint_run, fingerprint_csv_dataset)
    test_subjects = {s for s, v in sides.items() if v == {"test"}}
    assert meta["metrics"]["test_per_subject"]["n_subjects"] == len(test_subjects)


def test_fusion_temperature_is_fitted_on_validation_subjects(fingerprint_run, fingerprint_csv_dataset):
    """The fused (per-person) score has its own temperature, fitted on the validation subjects."""
    from genderclass.training.calibrate import fusion_temperature, fusion_temperatures

    meta = json.loads((fingerprint_run / "export" / "fingerprint.json").read_text())
    saved = np.load(fingerprint_run / "export" / "fingerprint.test_predictions.npz")
    subject_of = {Path(r["path"]).name: r["subject"] for r in fingerprint_csv_dataset["rows"]}
    with (fingerprint_run / "split.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))  # the cache's order, which the saved indices refer to
    val_rows = [rows[i] for i in saved["val_index"]]
    assert {r["split"] for r in val_rows} == {"val"}
    subjects = np.array([subject_of[Path(r["path"]).name] for r in val_rows])
    labels = np.array([int(r["label"]) for r in val_rows])
    assert len(set(labels.tolist())) == 2 and len(set(subjects.tolist())) < len(subjects)
    assert meta["fusion_temperature"] == pytest.approx(fusion_temperature(subjects, labels, saved["val_logits"]))
    assert meta["fusion_temperature"] != pytest.approx(meta["temperature"])
    # and one temperature per number of prints, up to the largest count enough subjects reach
    assert meta["fusion_temperatures"] == pytest.approx(fusion_temperatures(subjects, labels, saved["val_logits"]))
    assert len(meta["fusion_temperatures"]) == largest_count(subjects.tolist())
    assert len(meta["finger_known"]["fusion_temperatures"]) == len(meta["fusion_temperatures"])
    by_prints = meta["metrics"]["test_by_prints"]
    assert [row["prints"] for row in by_prints] == list(range(1, len(meta["fusion_temperatures"]) + 1))


def test_predict_and_fuse_with_trained_fingerprint_model(fingerprint_run, fingerprint_csv_dataset, run_cli):
    images = sorted((fingerprint_csv_dataset["root"] / "images").glob("f00_*.png"))
    code, stdout = run_cli(["predict", "--fuse", "--model", fingerprint_run, *images])
    assert code == 0
    *lines, fused = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) == 4 and all(len(r["faces"]) == 1 for r in lines)
    assert fused["n"] == 4 and fused["paths"] == [str(p) for p in images]


def test_evaluate_reports_per_subject(fingerprint_run, fingerprint_csv_dataset, tmp_path, run_cli):
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", fingerprint_run, "--data", fingerprint_csv_dataset["manifest"], "--format", "csv",
            "--out", out]  # fmt: skip
    code, stdout = run_cli(argv)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["n"] == len(fingerprint_csv_dataset["rows"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["crop_mode"] == "none"
    # the CSV's extra column is a group attribute; subjects are fused
    assert "finger" in metrics["groups"]
    # m_conf and f_conf share bytes but the manifest still labels each subject consistently
    assert metrics["per_subject"]["n_subjects"] == len(fingerprint_csv_dataset["subjects"])
    by_prints = metrics["per_subject_by_prints"]  # how the answer grows with the prints given
    assert by_prints[0]["prints"] == 1 and by_prints[0]["n_fused"] == 20 * len(fingerprint_csv_dataset["subjects"])
    assert "Prints per person" in (out / "report.html").read_text()
    # every print names its finger: also measured with the model's finger offsets removed
    meta = json.loads((fingerprint_run / "export" / "fingerprint.json").read_text())
    assert metrics["finger_known"]["threshold"] == pytest.approx(meta["finger_known"]["threshold"])
    assert summary["finger_known_balanced_accuracy"] == metrics["finger_known"]["balanced_accuracy"]
    logit_of = {
        p["path"]: meta["temperature"] * math.log(p["p_female"] / (1 - p["p_female"])) for p in metrics["predictions"]
    }
    finger_of = {
        str(Path(fingerprint_csv_dataset["manifest"]).parent / r["path"]): r["finger"]
        for r in fingerprint_csv_dataset["rows"]
    }
    paths = sorted(logit_of)
    corrected = [logit_of[p] - meta["finger_known"]["offsets"][finger_of[p]] for p in paths]
    labels = [int(next(x["label"] == "female" for x in metrics["predictions"] if x["path"] == p)) for p in paths]
    assert metrics["finger_known"]["roc_auc"] == pytest.approx(M.roc_auc(labels, corrected), abs=1e-4)


def test_resume_without_modality_reports_the_real_model(fingerprint_run, run_cli):
    """``train --out RUN --resume`` uses the saved config: the printed model path must exist."""
    code, stdout = run_cli(["train", "--out", fingerprint_run, "--resume"])
    assert code == 0
    reported = Path(json.loads(stdout)["model"])
    assert reported == fingerprint_run / "export" / "fingerprint.onnx"
    assert reported.is_file()


def test_fingerprint_folder_without_subjects_exports(tmp_path, cache_dir, run_cli, train_args, make_print):
    """Prints without subject ids (ROOT/male|female): training must still export a usable model."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(2)
    data = tmp_path / "prints"
    for label, name in ((0, "male"), (1, "female")):
        (data / name).mkdir(parents=True)
        for i in range(24):
            Image.fromarray(make_print(label, rng.uniform(0, 180), rng), "RGBA").save(data / name / f"{i}.png")
    out = tmp_path / "run"
    argv = ["train", "--modality", "fingerprint", "--data", data, "--format", "folder", "--out", out,
            "--epochs", "1", "--cache-dir", cache_dir, *train_args]  # fmt: skip
    code, _ = run_cli(argv)
    assert code == 0
    meta = json.loads((out / "export" / "fingerprint.json").read_text())
    assert "test_per_subject" not in meta["metrics"]  # no subjects, no per-subject metrics
    assert "finger_known" not in meta and "test_finger_known" not in meta["metrics"]  # no fingers named
    assert meta["metrics"]["test"]["n"] > 0


def test_finger_offsets_are_fitted_on_validation(fingerprint_run, fingerprint_csv_dataset):
    """With every print's finger named, export stores each finger's offset (class-balanced, from
    the validation logits), a calibration without them, and the test metrics with them removed."""
    from genderclass.evaluation import metrics as M
    from genderclass.training.calibrate import calibrate

    meta = json.loads((fingerprint_run / "export" / "fingerprint.json").read_text())
    saved = np.load(fingerprint_run / "export" / "fingerprint.test_predictions.npz")
    finger_of = {Path(r["path"]).name: r["finger"] for r in fingerprint_csv_dataset["rows"]}
    with (fingerprint_run / "split.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    val_rows = [rows[i] for i in saved["val_index"]]
    fingers = [finger_of[Path(r["path"]).name] for r in val_rows]
    labels = np.array([int(r["label"]) for r in val_rows])
    known = meta["finger_known"]
    expected = group_offsets(labels, saved["val_logits"], fingers)
    assert known["offsets"] == pytest.approx(expected)
    assert list(known["offsets"]) == [f for f in FINGERS if f in set(fingers)]  # thumb ... little
    refit = calibrate(labels, remove_offsets(saved["val_logits"], fingers, expected), "fingerprint")
    assert {k: known[k] for k in refit} == pytest.approx(refit)
    test_rows = [rows[i] for i in saved["index"]]
    test_fingers = [finger_of[Path(r["path"]).name] for r in test_rows]
    corrected = remove_offsets(saved["logits"], test_fingers, expected)
    assert meta["metrics"]["test_finger_known"]["roc_auc"] == pytest.approx(M.roc_auc(saved["labels"], corrected))
