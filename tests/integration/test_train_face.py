"""End to end on a synthetic face-folder dataset: train -> artefacts -> ONNX parity -> predict,
evaluate and export through the CLI."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow

METADATA_KEYS = {
    "name", "modality", "format_version", "labels", "positive_label", "preprocess", "input", "output",
    "temperature", "threshold", "min_confidence", "confidence_scale", "architecture", "flip_tta", "quantization",
    "training", "metrics", "created", "software",
}  # fmt: skip
TRAINING_KEYS = {
    "command", "data", "format", "data_hash", "split_sizes", "n_conflicting_groups", "best_epoch", "config",
    "data_license",
}  # fmt: skip


@pytest.fixture(scope="module")
def face_run(tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args) -> Path:
    out = tmp_path_factory.mktemp("runs") / "face"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "2",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    code, stdout = run_cli(argv)
    assert code == 0
    assert json.loads(stdout) == {"run": str(out), "model": str(out / "export" / "face.onnx")}
    return out


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_artefacts(face_run, face_folder_dataset):
    for rel in ("config.json", "split.csv", "metrics.csv", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                "export/face.onnx", "export/face.json"):  # fmt: skip
        assert (face_run / rel).is_file(), rel
    config = json.loads((face_run / "config.json").read_text())
    assert config["command"].startswith("genderclass train --data ")
    assert config["train"]["epochs"] == 2 and config["train"]["preprocess"]["input_size"] == 32
    assert config["data"]["n_images"] == 80 and config["data"]["n_unreadable"] == 0
    assert sum(config["data"]["split_sizes"].values()) == 80


def test_split_csv_is_leak_free_and_complete(face_run, face_folder_dataset):
    rows = _read_csv(face_run / "split.csv")
    assert len(rows) == 80
    assert {Path(r["path"]).name for r in rows} == {p.name for p in face_folder_dataset.rglob("*.png")}
    sides = defaultdict(set)
    for row in rows:
        sides[row["group"]].add(row["split"])
        assert int(row["label"]) == (1 if Path(row["path"]).parent.name == "female" else 0)
    assert all(len(s) == 1 for s in sides.values())
    counts = {name: sum(r["split"] == name for r in rows) for name in ("train", "val", "test")}
    assert counts["train"] > counts["test"] > 0 and counts["val"] > 0
    for name in ("val", "test"):  # stratified: both classes on every side
        assert {r["label"] for r in rows if r["split"] == name} == {"0", "1"}
    config = json.loads((face_run / "config.json").read_text())
    assert config["data"]["split_sizes"] == {**counts, "dropped": 0}


def test_metrics_csv_has_both_epochs(face_run):
    rows = _read_csv(face_run / "metrics.csv")
    epochs = {int(r["epoch"]) for r in rows if r.get("val_bal_acc")}
    assert epochs == {0, 1}


def test_last_checkpoint_is_the_final_epoch(face_run):
    """``--resume`` restarts from last.ckpt, so it must hold the last completed epoch, not the best one."""
    import torch

    config = json.loads((face_run / "config.json").read_text())
    steps_per_epoch = config["data"]["split_sizes"]["train"] // config["train"]["batch_size"]  # drop_last
    last = torch.load(face_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == config["train"]["epochs"] * steps_per_epoch


def test_exported_metadata(face_run):
    meta = json.loads((face_run / "export" / "face.json").read_text())
    assert set(meta) == METADATA_KEYS
    assert set(meta["training"]) == TRAINING_KEYS
    config = json.loads((face_run / "config.json").read_text())
    assert meta["name"] == "face" and meta["modality"] == "face"
    assert meta["labels"] == ["male", "female"] and meta["positive_label"] == "female"
    assert meta["preprocess"] == config["train"]["preprocess"]
    assert meta["input"] == {"name": "pixels", "layout": "NCHW", "dtype": "float32", "range": [0, 255]}
    assert meta["threshold"] == 0.5 and meta["temperature"] > 0 and 0.5 <= meta["min_confidence"] < 1
    assert meta["flip_tta"] is True and meta["architecture"] == "small_resnet" and meta["quantization"] is None
    assert meta["training"]["split_sizes"] == config["data"]["split_sizes"]
    assert meta["training"]["data_hash"] == config["data"]["data_hash"]
    assert meta["training"]["best_epoch"] in (0, 1)
    for split, n in (
        ("validation", config["data"]["split_sizes"]["val"]),
        ("test", config["data"]["split_sizes"]["test"]),
    ):
        assert meta["metrics"][split]["n"] == n
        assert {"accuracy", "balanced_accuracy", "roc_auc", "confusion_matrix", "ece"} <= set(meta["metrics"][split])


def test_onnx_matches_torch(face_run):
    import onnxruntime as ort
    import torch

    from genderclass.training.ensemble import inference_model

    model, cfg = inference_model(face_run)
    x = np.random.default_rng(0).uniform(0, 255, (5, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(face_run / "export" / "face.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": x})[0].reshape(-1)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # the graph averages the image and its mirror (flip test-time augmentation)
    mirrored = session.run(None, {"pixels": np.ascontiguousarray(x[:, :, :, ::-1])})[0].reshape(-1)
    np.testing.assert_allclose(mirrored, got, atol=1e-4, rtol=0)


def test_cache_holds_the_inference_crops(face_run, face_folder_dataset, cache_dir):
    """What the network was trained on is exactly what the predictor computes for the same file."""
    from genderclass.config import PreprocessConfig
    from genderclass.data.cache import load_cache
    from genderclass.faces.detect import default_detector
    from genderclass.imageio import load_image
    from genderclass.preprocess import crop_chip

    cfg = PreprocessConfig.from_dict(json.loads((face_run / "export" / "face.json").read_text())["preprocess"])
    (file,) = sorted(cache_dir.glob("face-*.npz"))
    cache = load_cache(file)
    detector = default_detector()
    for i in range(0, len(cache), 7):
        crop, detected = crop_chip(load_image(str(cache.paths[i])), cfg, detector)
        np.testing.assert_array_equal(cache.images[i], crop.pixels)
        assert bool(cache.detected[i]) == detected


def test_predict_with_run_folder(face_run, face_folder_dataset, run_cli):
    image = face_folder_dataset / "female" / "female_000.png"
    code, stdout = run_cli(["predict", image, "--model", face_run, "--no-detect"])
    assert code == 0
    (line,) = stdout.splitlines()
    result = json.loads(line)
    assert result["error"] is None and result["path"] == str(image)
    (face,) = result["faces"]
    assert face["box"] == [0, 0, 48, 48]
    assert set(face) == {"box", "label", "p_female", "confidence"}


def test_evaluate_writes_metrics_and_report(face_run, face_folder_dataset, tmp_path, run_cli):
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", face_run, "--data", face_folder_dataset, "--format", "folder", "--no-detect",
            "--out", out]  # fmt: skip
    code, stdout = run_cli(argv)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["n"] == 80 and summary["report"] == str(out / "report.html")
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "roc_auc", "confusion_matrix", "predictions"):
        assert key in metrics, key
    assert metrics["crop_mode"] == "none"
    assert np.array(metrics["confusion_matrix"]).sum() == 80
    assert len(metrics["predictions"]) == 80
    assert {p["label"] for p in metrics["predictions"]} == {"male", "female"}  # the true labels
    assert {p["predicted"] for p in metrics["predictions"]} <= {"male", "female"}
    assert metrics["roc_auc"] > 0.75  # two epochs on an easy colour cue: the ranking is learned
    # the run's own data, training files and all: the record says how many lie beyond its test split
    n_test = len(Path(face_run, "export", "face.test_files.txt").read_text().split())
    beyond = f"all ({80 - n_test} outside the model's test split: probably trained on)"
    assert metrics["data"] == {"data": str(face_folder_dataset), "format": "folder", "files": beyond}
    html = (out / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html.lower()
    assert f"data: {face_folder_dataset}" in html and "format: folder" in html  # what was measured


def test_evaluate_keeps_its_own_fields_beside_data_columns_of_the_same_name(
    face_run, face_folder_dataset, tmp_path, run_cli
):
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "path,label,p_female,predicted\n"
        f"{face_folder_dataset / 'male' / 'male_000.png'},male,0.99,female\n"
        f"{face_folder_dataset / 'female' / 'female_000.png'},female,0.01,male\n"
    )
    out = tmp_path / "eval_csv"
    code, _ = run_cli(
        ["evaluate", "--model", face_run, "--data", manifest, "--format", "csv", "--no-detect", "--out", out]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    clf_threshold = metrics["model"]["threshold"]
    for item in metrics["predictions"]:
        assert isinstance(item["p_female"], float)  # the model's score, not the column's text
        assert item["predicted"] == ("female" if item["p_female"] >= clf_threshold else "male")


def test_evaluate_test_split_only(face_run, face_folder_dataset, tmp_path, run_cli):
    out = tmp_path / "eval_test"
    argv = ["evaluate", "--model", face_run / "export" / "face.onnx", "--data", face_folder_dataset, "--format",
            "folder", "--no-detect", "--split-file", face_run / "split.csv", "--split", "test", "--out", out]  # fmt: skip
    code, stdout = run_cli(argv)
    assert code == 0
    n_test = sum(r["split"] == "test" for r in _read_csv(face_run / "split.csv"))
    assert json.loads(stdout)["n"] == n_test
    meta = json.loads((face_run / "export" / "face.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    # the CLI evaluation of the test split reproduces the test metrics stored at export
    assert metrics["accuracy"] == pytest.approx(meta["metrics"]["test"]["accuracy"])
    assert metrics["roc_auc"] == pytest.approx(meta["metrics"]["test"]["roc_auc"], abs=1e-6)
    # the exported model's training curves (face.metrics.csv beside face.onnx) are in the report
    assert (out / "figures" / "training_curves.png").is_file()


def test_export_command(face_run, tmp_path, run_cli):
    out = tmp_path / "dist"
    code, stdout = run_cli(["export", face_run, "--out", out, "--name", "custom"])
    assert code == 0
    assert json.loads(stdout) == {"model": str(out / "custom.onnx"), "metadata": str(out / "custom.json")}
    for name in ("custom.onnx", "custom.json", "custom.metrics.csv", "custom.test_files.txt"):
        assert (out / name).is_file(), name
    again = json.loads((out / "custom.json").read_text())
    first = json.loads((face_run / "export" / "face.json").read_text())
    assert again["name"] == "custom"
    assert again["metrics"]["test"]["accuracy"] == pytest.approx(first["metrics"]["test"]["accuracy"])
    assert again["temperature"] == pytest.approx(first["temperature"])


def test_export_without_flip_tta(face_run, tmp_path, run_cli):
    """--no-flip-tta exports the bare network: one pass, mirror images score differently."""
    import onnxruntime as ort
    import torch

    from genderclass.training.ensemble import FlipAveraged, inference_model

    code, _ = run_cli(["export", face_run, "--out", tmp_path, "--no-flip-tta"])
    assert code == 0
    assert json.loads((tmp_path / "face.json").read_text())["flip_tta"] is False
    model, _ = inference_model(face_run, flip_tta=False)
    assert not isinstance(model, FlipAveraged)
    x = np.random.default_rng(1).uniform(0, 255, (4, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "face.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": x})[0].reshape(-1)
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy().reshape(-1), atol=1e-4, rtol=0)
    mirrored = session.run(None, {"pixels": np.ascontiguousarray(x[:, :, :, ::-1])})[0].reshape(-1)
    assert np.abs(mirrored - got).max() > 1e-3


def test_export_ensemble(face_run, face_folder_dataset, tmp_path_factory, run_cli, train_args):
    """Two runs on one split export one graph: each member sees its own input size, logits averaged;
    a run split differently is refused. The second member varies --seed but keeps the split
    with --split-seed."""
    import onnxruntime as ort
    import torch
    from torch.nn import functional as F

    from genderclass.training.ensemble import inference_model

    runs, cache_dir = tmp_path_factory.mktemp("ensemble"), tmp_path_factory.mktemp("ensemble-cache")
    base = ["train", "--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir]
    wider = [a if a != "32" else "40" for a in train_args]  # --input-size 40
    assert run_cli([*base, "--out", runs / "wide", *wider, "--seed", "1", "--split-seed", "0"])[0] == 0
    assert (runs / "wide" / "split.csv").read_bytes() == (face_run / "split.csv").read_bytes()
    assert json.loads((runs / "wide" / "config.json").read_text())["train"]["seed"] == 1
    out = runs / "dist"
    code, _ = run_cli(["export", face_run, runs / "wide", "--out", out, "--name", "face"])
    assert code == 0
    meta = json.loads((out / "face.json").read_text())
    assert meta["preprocess"]["input_size"] == 40 and meta["flip_tta"] is True
    assert meta["architecture"] == "small_resnet + small_resnet" and meta["training"]["best_epoch"] is None
    members = meta["training"]["members"]
    assert [m["input_size"] for m in members] == [32, 40] and [m["run"] for m in members] == [
        str(face_run),
        str(runs / "wide"),
    ]
    assert not (out / "face.metrics.csv").exists()  # an ensemble has no single training curve

    x = np.random.default_rng(2).uniform(0, 255, (3, 3, 40, 40)).astype(np.float32)
    small, _ = inference_model(face_run)
    large, _ = inference_model(runs / "wide")
    with torch.no_grad():
        pixels = torch.from_numpy(x)
        resized = F.interpolate(pixels, size=(32, 32), mode="bilinear", align_corners=False)
        expected = ((small(resized) + large(pixels)) / 2).numpy()
    session = ort.InferenceSession(str(out / "face.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"pixels": x})[0].reshape(-1), expected, atol=1e-4, rtol=0)

    assert run_cli([*base, "--out", runs / "other-split", *train_args, "--seed", "1"])[0] == 0
    with pytest.raises(ValueError, match="split differently"):
        from genderclass.training.export import export_run

        export_run([face_run, runs / "other-split"], out=runs / "refused")


def test_export_int8(face_run, tmp_path, run_cli, cache_dir):
    """--quantize int8 writes a quantized graph whose logits follow the float model's, and the
    metadata's metrics are those of the quantized file."""
    import onnx
    import onnxruntime as ort

    from genderclass.data.cache import load_cache
    from genderclass.evaluation import metrics as M

    code, _ = run_cli(["export", face_run, "--out", tmp_path, "--quantize", "int8"])
    assert code == 0
    meta = json.loads((tmp_path / "face.json").read_text())
    assert meta["quantization"]["type"] == "int8" and meta["quantization"]["calibration"].endswith("training crops")
    ops = {node.op_type for node in onnx.load(str(tmp_path / "face.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops

    (file,) = sorted(cache_dir.glob("face-*.npz"))
    cache = load_cache(file)
    split = {Path(r["path"]).name: r["split"] for r in _read_csv(face_run / "split.csv")}
    test = np.array([i for i, p in enumerate(cache.paths) if split[Path(p).name] == "test"])
    pixels = np.ascontiguousarray(cache.images[test].transpose(0, 3, 1, 2).astype(np.float32))

    def logits(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"pixels": pixels})[0].reshape(-1)

    quantized, float32 = logits(tmp_path / "face.onnx"), logits(face_run / "export" / "face.onnx")
    assert not np.allclose(quantized, float32, atol=1e-4)  # really quantized
    assert np.corrcoef(quantized, float32)[0, 1] > 0.98 and np.abs(quantized - float32).max() < 0.25
    # the stored predictions and the temperature come from the quantized file, not the float model
    saved = np.load(tmp_path / "face.test_predictions.npz")
    order = np.argsort(saved["index"])
    np.testing.assert_allclose(saved["logits"][order], quantized, atol=1e-5, rtol=0)
    assert meta["temperature"] == pytest.approx(
        M.fit_temperature(saved["val_logits"], cache.labels[saved["val_index"]]), rel=1e-6
    )
    with pytest.raises(ValueError, match="unknown quantization"):
        from genderclass.training.export import export_run

        export_run(face_run, out=tmp_path / "int4", quantize="int4")
    assert not (tmp_path / "int4").exists()  # refused before anything is written


def test_int8_calibration_uses_training_crops_only(face_run, tmp_path, monkeypatch, cache_dir):
    from genderclass.data.cache import load_cache
    from genderclass.training import export

    seen = []
    monkeypatch.setattr(export, "quantize_int8", lambda path, crops: seen.append(crops))
    export.export_run(face_run, out=tmp_path, quantize="int8")
    (file,) = sorted(cache_dir.glob("face-*.npz"))
    cache = load_cache(file)
    split = {Path(r["path"]).name: r["split"] for r in _read_csv(face_run / "split.csv")}
    train = {cache.images[i].tobytes() for i, p in enumerate(cache.paths) if split[Path(p).name] == "train"}
    (crops,) = seen
    assert len(crops) == min(export.CALIBRATION_CROPS, len(train))
    assert all(crop.tobytes() in train for crop in crops)


def test_failed_export_keeps_the_previous_model(face_run, tmp_path, monkeypatch):
    """A failure after the graph is written leaves the earlier ONNX + JSON pair as it was."""
    from genderclass.training import export

    export.export_run(face_run, out=tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ("face.onnx", "face.json")}

    def broken(path, crops):
        raise RuntimeError("quantization failed")

    monkeypatch.setattr(export, "quantize_int8", broken)
    with pytest.raises(RuntimeError, match="quantization failed"):
        export.export_run(face_run, out=tmp_path, quantize="int8")
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert not list(tmp_path.glob(".*partial"))


def test_ensemble_refuses_other_preprocessing(face_run, monkeypatch):
    import dataclasses

    from torch import nn

    from genderclass.training import ensemble

    real = ensemble.inference_model

    def with_margin(run_dir, flip_tta=None):
        model, cfg = real(run_dir, flip_tta=flip_tta)
        if run_dir.name == "other":
            cfg = dataclasses.replace(cfg, preprocess=dataclasses.replace(cfg.preprocess, margin=0.3))
        return nn.Identity(), cfg

    monkeypatch.setattr(ensemble, "inference_model", with_margin)
    other = face_run.parent / "other"
    other.symlink_to(face_run)
    try:
        with pytest.raises(ValueError, match="other preprocessing than the ensemble: margin"):
            ensemble.ensemble_model([face_run, other])
    finally:
        other.unlink()


def test_training_again_into_a_trained_run_is_refused(face_run, face_folder_dataset, run_cli, train_args, caplog):
    """Without --resume, a second run into the same folder would save best-v1.ckpt beside the old
    checkpoint and export the old one: refused before anything is written."""
    best = face_run / "checkpoints" / "best.ckpt"
    before = best.stat().st_mtime_ns, (face_run / "config.json").read_bytes()
    code, stdout = run_cli(["train", "--data", face_folder_dataset, "--format", "folder", "--out", face_run,
                            "--epochs", "1", *train_args])  # fmt: skip
    assert code == 2 and stdout == ""
    assert any("already holds a trained run" in r.getMessage() for r in caplog.records)
    assert (best.stat().st_mtime_ns, (face_run / "config.json").read_bytes()) == before
    assert not list((face_run / "checkpoints").glob("best-v*.ckpt"))


def test_evaluate_groups_by_a_column_but_not_by_an_id(face_run, face_folder_dataset, tmp_path, run_cli):
    """An id column (a value per file) would make one group per file: a huge, useless report."""
    images = sorted(face_folder_dataset.glob("*/*.png"))
    rows = [f"{path},{path.parent.name},{i},{'left' if i % 2 else 'right'}" for i, path in enumerate(images)]
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label,id,side\n" + "\n".join(rows) + "\n")
    out = tmp_path / "eval_groups"
    argv = ["evaluate", "--model", face_run, "--data", manifest, "--format", "csv", "--no-detect", "--out", out]
    assert run_cli(argv)[0] == 0
    groups = json.loads((out / "metrics.json").read_text())["groups"]
    assert set(groups) == {"side", "side_x_gender"} and set(groups["side"]) == {"left", "right", "_summary"}


def test_export_refuses_data_that_no_longer_splits_as_in_training(face_run, tmp_path, run_cli, caplog):
    """Export reads the data again: if it changed, the new test split would hold training files."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(face_run, copy, ignore=shutil.ignore_patterns("export"))
    rows = _read_csv(copy / "split.csv")
    moved = next(r for r in rows if r["split"] == "train")
    moved["split"] = "test"  # as if the data had changed since: this file now lands in test
    with (copy / "split.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert run_cli(["export", copy, "--out", tmp_path / "dist"]) == (2, "")
    assert any("changed since" in r.getMessage() and moved["path"] in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "dist" / "face.onnx").exists()


@pytest.mark.parametrize("classes, batch, message", [
    (("male",), "8", "has no female images"),
    (("male", "female"), "64", "fewer than one batch"),  # about 60 training images
])  # fmt: skip
def test_train_refuses_data_it_cannot_learn_from(
    classes, batch, message, face_folder_dataset, tmp_path, run_cli, cache_dir, caplog
):
    import shutil

    for name in classes:
        shutil.copytree(face_folder_dataset / name, tmp_path / "data" / name)
    argv = ["train", "--data", tmp_path / "data", "--format", "folder", "--out", tmp_path / "run", "--epochs", "1",
            "--cache-dir", cache_dir, "--input-size", "32", "--batch-size", batch]  # fmt: skip
    assert run_cli(argv) == (2, "")
    assert any(message in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_export_refuses_a_run_twice_and_a_folder_without_checkpoints(face_run, tmp_path, run_cli):
    assert run_cli(["export", face_run, face_run, "--out", tmp_path / "twice"]) == (2, "")
    assert not (tmp_path / "twice").exists()
    assert run_cli(["export", tmp_path, "--out", tmp_path / "none"]) == (2, "")


def test_a_diverging_loss_stops_training_with_a_clear_error(face_folder_dataset, tmp_path, run_cli, cache_dir, caplog):
    """A learning rate far too high makes the loss NaN: training stops at once with a usage error
    naming --lr, instead of training every epoch on NaN weights and failing in the export."""
    out = tmp_path / "run"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "2",
            "--cache-dir", cache_dir, "--input-size", "32", "--width", "0.25", "--batch-size", "16",
            "--threads", "1", "--lr", "1e30"]  # fmt: skip
    assert run_cli(argv) == (2, "")
    assert any("training diverged" in r.getMessage() and "lower --lr" in r.getMessage() for r in caplog.records)
    assert not (out / "checkpoints").exists() and not (out / "export").exists()
