"""``genderclass train --aux-task age|finger``: an auxiliary head on the gender network's features."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

from genderclass.config import TrainConfig  # noqa: E402
from genderclass.training.auxiliary import AGE_SCALE, AUXILIARY_TASKS  # noqa: E402
from genderclass.training.module import GenderModule  # noqa: E402

pytestmark = pytest.mark.slow


def test_targets_read_valid_values_and_mark_the_rest_missing():
    ages = AUXILIARY_TASKS["age"].targets(
        [{"age": "26"}, {"age": "0"}, {}, {"age": "unknown"}, {"age": "-3"}, {"race": "asian"}]
    )
    assert ages.dtype == np.float32
    assert ages[:2].tolist() == [26.0, 0.0]
    assert np.isnan(ages[2:]).all()
    fingers = AUXILIARY_TASKS["finger"].targets([{"finger": "thumb"}, {"finger": "Little"}, {"finger": "toe"}, {}])
    assert fingers[:2].tolist() == [0.0, 4.0] and np.isnan(fingers[2:]).all()


def test_finger_loss_and_accuracy():
    task = AUXILIARY_TASKS["finger"]
    predicted = torch.tensor([[5.0, 0, 0, 0, 0], [0, 0, 0, 0, 5.0], [5.0, 0, 0, 0, 0]])
    target = torch.tensor([0.0, 4.0, 2.0])
    assert task.measure(predicted, target).item() == pytest.approx(2 / 3)
    expected = torch.nn.functional.cross_entropy(predicted, target.long())
    assert task.loss(predicted, target).item() == pytest.approx(expected.item())
    years = AUXILIARY_TASKS["age"].measure(
        torch.log1p(torch.tensor([[10.0], [40.0]])) / AGE_SCALE, torch.tensor([12.0, 40])
    )
    assert years.item() == pytest.approx(1.0, abs=1e-4)  # mean absolute error in years


def _module(aux_task: str, aux_weight: float = 0.5) -> GenderModule:
    cfg = TrainConfig(arch="small_resnet", width=0.25, aux_task=aux_task, aux_weight=aux_weight, label_smoothing=0.0)
    cfg.preprocess.input_size = 32
    return GenderModule(cfg.to_dict())


def test_age_loss_is_added_for_known_ages_only(monkeypatch):
    module = _module("age", aux_weight=0.5)
    monkeypatch.setattr(module, "log", lambda *args, **kwargs: None)  # no trainer here
    module.on_fit_start()  # registers the hook that keeps the classifier's input features
    module.eval()  # no dropout: the same batch gives the same features every time
    x, y = torch.rand(4, 3, 32, 32) * 255, torch.tensor([0.0, 1.0, 1.0, 0.0])
    ages = torch.tensor([30.0, 2.0, math.nan, 61.0])

    with torch.no_grad():
        loss = module.training_step((x, y, ages), 0)
        logits = module(x)
        predicted = module.aux_head(module._features).squeeze(1)
    gender = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    known = ~torch.isnan(ages)
    age_term = (predicted[known] - torch.log1p(ages[known]) / AGE_SCALE).abs().mean()
    assert loss.item() == pytest.approx((gender + 0.5 * age_term).item(), rel=1e-5)
    with torch.no_grad():
        unknown = module.training_step((x, y, torch.full((4,), math.nan)), 0)
    assert unknown.item() == pytest.approx(gender.item(), rel=1e-5)  # no age, no age loss

    # the age loss trains the shared features, not only its own head
    module.zero_grad()
    module.training_step((x, torch.zeros(4), ages), 0).backward()
    with_age = module._classifier().weight.grad.clone(), module.model.backbone[0].weight.grad.clone()
    assert module.aux_head.weight.grad.abs().sum() > 0
    module.zero_grad()
    module.training_step((x, torch.zeros(4), torch.full((4,), math.nan)), 0).backward()
    assert torch.allclose(module._classifier().weight.grad, with_age[0])  # the gender head is unaffected
    assert not torch.allclose(module.model.backbone[0].weight.grad, with_age[1])

    module.on_fit_end()  # the hook is gone: export traces a plain network
    module._features = None
    module(x)
    assert module._features is None


def test_without_an_auxiliary_task_there_is_no_auxiliary_head():
    module = _module("")
    assert module.aux_head is None
    assert not any(k.startswith("aux_head.") for k in module.state_dict())
    assert _module("finger").aux_head.out_features == 5


@pytest.fixture(scope="module")
def aged_faces(tmp_path_factory, make_face) -> Path:
    """A CSV manifest of 64 synthetic faces whose brightness grows with their ``age`` column."""
    from PIL import Image

    root = tmp_path_factory.mktemp("aged_faces")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(64):
        label, age = i % 2, int(rng.integers(1, 90))
        face = np.clip(make_face(label, rng).astype(np.float32) * (0.4 + age / 120), 0, 255).astype(np.uint8)
        Image.fromarray(face).save(root / f"face_{i:03d}.png")
        rows.append({"path": f"face_{i:03d}.png", "label": "female" if label else "male", "age": age})
    with (root / "faces.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "age"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "faces.csv"


def test_training_with_an_age_head(tmp_path_factory, aged_faces, face_folder_dataset, run_cli, train_args, caplog):
    """The run logs the age error, its checkpoint holds the age head, the export holds only the
    gender network; runs with and without an age head can start from each other's weights."""
    import onnxruntime as ort

    from genderclass.training.export import inference_model

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
    plain = ["--out", runs / "plain", "--epochs", "1", "--init-from", checkpoint]
    assert run_cli([*base, *plain])[0] == 0
    again = ["--out", runs / "again", "--epochs", "1", "--aux-task", "age"]
    assert run_cli([*base, *again, "--init-from", runs / "plain" / "checkpoints" / "best.ckpt"])[0] == 0
    other = [*base, "--arch", "mobilenet_v3_small", "--out", runs / "other", "--init-from", checkpoint]
    assert run_cli(other)[0] == 2
    assert "does not fit this network" in caplog.text

    # a dataset without ages trains without the auxiliary head, says so, and its config records it
    no_ages = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", runs / "no-ages",
               "--aux-task", "age", "--epochs", "1", "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(no_ages)[0] == 0
    assert "no training image has a valid 'age' attribute: training without --aux-task" in caplog.text
    assert json.loads((runs / "no-ages" / "config.json").read_text())["train"]["aux_task"] == ""
    state = torch.load(runs / "no-ages" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert not any(k.startswith("aux_head.") for k in state["state_dict"])


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
