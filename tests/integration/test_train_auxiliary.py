"""``genderclass train --aux-task age|finger``: an auxiliary head on the gender network's features."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aged_faces(tmp_path_factory, make_face) -> Path:
    """A CSV manifest of 64 synthetic faces whose brightness grows with their ``age`` column (and a
    ``finger`` column, meaningless here, to switch auxiliary tasks between runs)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("aged_faces")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(64):
        label, age = i % 2, int(rng.integers(1, 90))
        face = np.clip(make_face(label, rng).astype(np.float32) * (0.4 + age / 120), 0, 255).astype(np.uint8)
        Image.fromarray(face).save(root / f"face_{i:03d}.png")
        rows.append({"path": f"face_{i:03d}.png", "label": "female" if label else "male", "age": age,
                     "finger": ("thumb", "index", "middle", "ring", "little")[i % 5]})  # fmt: skip
    with (root / "faces.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "age", "finger"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "faces.csv"


def test_training_with_an_age_head(tmp_path_factory, aged_faces, face_folder_dataset, run_cli, train_args, caplog):
    """The run logs the age error, its checkpoint holds the age head, the export holds only the
    gender network; runs with and without an age head can start from each other's weights."""
    import onnxruntime as ort

    from genderclass.training.ensemble import inference_model

    runs, cache_dir = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("age-cache")
    base = ["train", "--data", aged_faces, "--format", "csv", "--epochs", "2", "--cache-dir", cache_dir, *train_args]
    assert run_cli([*base, "--out", runs / "age", "--aux-task", "age", "--aux-weight", "1.0"])[0] == 0
    config = json.loads((runs / "age" / "config.json").read_text())["train"]
    assert (config["aux_task"], config["aux_weight"]) == ("age", 1.0)
    with (runs / "age" / "metrics.csv").open() as handle:
        errors = [float(r["val_age_mae"]) for r in csv.DictReader(handle) if r.get("val_age_mae")]
    assert len(errors) == 2 and all(0 < e < 1000 for e in errors)
    state = torch.load(runs / "age" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert {"aux_head.weight", "aux_head.bias"} <= set(state["state_dict"])

    session = ort.InferenceSession(str(runs / "age" / "export" / "face.onnx"), providers=["CPUExecutionProvider"])
    assert len(session.get_outputs()) == 1
    x = np.random.default_rng(4).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    net, _ = inference_model(runs / "age")
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"pixels": x})[0].reshape(-1), expected, atol=1e-4, rtol=0)

    # fine-tuning drops or adds the age head; the network itself must still match
    checkpoint = runs / "age" / "checkpoints" / "best.ckpt"
    plain = ["--out", runs / "plain", "--epochs", "1", "--init-from", checkpoint, "--aux-task", "none"]
    assert run_cli([*base, *plain])[0] == 0
    again = ["--out", runs / "again", "--epochs", "1", "--aux-task", "age"]
    assert run_cli([*base, *again, "--init-from", runs / "plain" / "checkpoints" / "best.ckpt"])[0] == 0
    # the export names both earlier stages, oldest first, with the commands that trained them
    stages = json.loads((runs / "again" / "export" / "face.json").read_text())["training"]["earlier_stages"]
    assert [s["checkpoint"] for s in stages] == [str(checkpoint), str(runs / "plain" / "checkpoints" / "best.ckpt")]
    assert [s["command"] for s in stages] == [
        json.loads((runs / name / "config.json").read_text())["command"] for name in ("age", "plain")
    ]
    # another auxiliary task: the network's weights carry over, the head (another shape) starts fresh
    finger = ["--out", runs / "finger", "--epochs", "1", "--aux-task", "finger", "--init-from", checkpoint]
    caplog.set_level(logging.INFO, logger="genderclass")
    assert run_cli([*base, *finger])[0] == 0
    assert "the auxiliary finger head starts fresh" in caplog.text
    started = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    head = torch.load(runs / "finger" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert tuple(head["state_dict"]["aux_head.weight"].shape) == (5, started["aux_head.weight"].shape[1])
    other = [*base, "--arch", "mobilenet_v3_small", "--out", runs / "other", "--init-from", checkpoint]
    assert run_cli(other)[0] == 2
    assert "does not fit this network: it holds a small_resnet" in caplog.text
    assert "this run trains a mobilenet_v3_small" in caplog.text
    assert not (runs / "other").exists()  # refused before the run folder is written

    # a dataset without ages trains without the auxiliary head, says so, and its config records it
    no_ages = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", runs / "no-ages",
               "--aux-task", "age", "--epochs", "1", "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(no_ages)[0] == 0
    assert "no training image has a valid 'age' attribute: training without --aux-task" in caplog.text
    assert json.loads((runs / "no-ages" / "config.json").read_text())["train"]["aux_task"] == ""
    state = torch.load(runs / "no-ages" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert not any(k.startswith("aux_head.") for k in state["state_dict"])
    # resuming with the same command is no change of task
    assert run_cli([*no_ages, "--resume", "--epochs", "2"])[0] == 0
    assert run_cli([*no_ages, "--resume", "--epochs", "3"])[0] == 0  # and again: the request is kept
    saved = json.loads((runs / "no-ages" / "config.json").read_text())
    assert (saved["train"]["epochs"], saved["train"]["aux_task"], saved["data"]["aux_task_unavailable"]) == (
        3,
        "",
        "age",
    )


def test_fingerprint_training_with_a_finger_head(tmp_path_factory, fingerprint_csv_dataset, run_cli, train_args):
    """The finger named in the CSV trains a 5-way head; its validation accuracy is logged."""
    out = tmp_path_factory.mktemp("runs") / "finger"
    argv = ["train", "--modality", "fingerprint", "--data", fingerprint_csv_dataset["manifest"], "--format", "csv",
            "--out", out, "--epochs", "2", "--cache-dir", tmp_path_factory.mktemp("finger-cache"), *train_args,
            "--aux-task", "finger", "--aux-weight", "0.3"]  # fmt: skip
    assert run_cli(argv)[0] == 0
    with (out / "metrics.csv").open() as handle:
        accuracy = [float(r["val_finger_acc"]) for r in csv.DictReader(handle) if r.get("val_finger_acc")]
    assert len(accuracy) == 2 and all(0 <= a <= 1 for a in accuracy)
    state = torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    classifier = [k for k in state if k.startswith("model.") and k.endswith(".weight")][-1]  # the gender logit's
    assert tuple(state["aux_head.weight"].shape) == (5, state[classifier].shape[1])

    # the fingerprint default (a finger head) can be switched off
    plain = [a if a != "finger" else "none" for a in argv]
    plain[plain.index(out)] = out.parent / "plain"
    assert run_cli([*plain, "--epochs", "1"])[0] == 0
    assert json.loads((out.parent / "plain" / "config.json").read_text())["train"]["aux_task"] == ""
