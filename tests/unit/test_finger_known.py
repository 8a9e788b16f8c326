"""Finger position known: per-finger offsets (fitted on validation at export) removed from the
logit, and a calibration of its own; in the Python API, the CLI and the web API."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from genderclass.evaluation import metrics as M
from genderclass.inference.classifier import GenderClassifier

KNOWN = {
    "offsets": {"thumb": -1.0, "index": 0.25, "middle": 0.0, "ring": 0.0, "little": 1.0},
    "temperature": 0.8,
    "threshold": 0.4,
    "min_confidence": 0.0,
}


def test_group_offsets_are_class_balanced():
    # thumbs: male logits -2, female 0 -> balanced mean -1; all: male -1, female 1 -> 0
    labels = [0, 0, 1, 0, 0, 1, 1]
    logits = [-2.0, -2.0, 0.0, 0.0, 0.0, 2.0, 2.0]
    fingers = ["thumb", "thumb", "thumb", "little", "little", "little", "little"]
    offsets = M.group_offsets(labels, logits, fingers)
    male, female = np.mean([-2, -2, 0, 0]), np.mean([0, 2, 2])
    overall = (male + female) / 2
    assert offsets["thumb"] == pytest.approx((-2 + 0) / 2 - overall)
    assert offsets["little"] == pytest.approx((0 + 2) / 2 - overall)
    # a finger with one label only has no offset; labels alone never make one
    assert "ring" not in M.group_offsets([0, 1, 0], [0.0, 1.0, 5.0], ["thumb", "thumb", "ring"])
    assert M.group_offsets([0, 1, 0, 1], [0.0, 3.0, 0.0, 3.0], ["a", "a", "b", "b"]) == {"a": 0.0, "b": 0.0}
    np.testing.assert_allclose(M.remove_offsets([1.0, 1.0], ["thumb", "little"], offsets),
                               [1.0 - offsets["thumb"], 1.0 - offsets["little"]])  # fmt: skip
    with pytest.raises(ValueError, match="no offset for toe"):
        M.remove_offsets([1.0], ["toe"], offsets)


@pytest.fixture
def finger_model(tiny_fingerprint_model, tmp_path) -> Path:
    path = tmp_path / "fp.onnx"
    shutil.copy(tiny_fingerprint_model, path)
    meta = json.loads(tiny_fingerprint_model.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, "finger_known": KNOWN}))
    return path


def _print(seed: int) -> np.ndarray:
    gray = np.random.default_rng(seed).integers(0, 256, (103, 96), dtype=np.uint8)
    return np.dstack([gray] * 3)


def _logit(clf: GenderClassifier, face: dict) -> float:
    p = face["p_female"]
    return clf.temperature * math.log(p / (1 - p))


def test_a_known_finger_removes_its_offset_and_uses_its_calibration(finger_model):
    clf = GenderClassifier.load(finger_model)
    image = _print(1)
    plain = clf.predict(image)["faces"][0]
    assert "finger" not in plain
    logit = _logit(clf, plain)
    for finger, offset in KNOWN["offsets"].items():
        face = clf.predict(image, finger=finger)["faces"][0]
        expected = 1 / (1 + math.exp(-(logit - offset) / KNOWN["temperature"]))
        assert face["p_female"] == pytest.approx(expected, abs=1e-5)
        assert face["finger"] == finger
        assert face["label"] == ("female" if expected >= KNOWN["threshold"] else "male")
    # one batch, fingers per image; an image without a finger stays as without
    batch = clf.predict_batch([image, image], fingers=["thumb", None])
    assert batch[0]["faces"][0]["finger"] == "thumb" and batch[1]["faces"][0] == plain
    assert clf.info()["fingers"] == list(KNOWN["offsets"])
    with pytest.raises(ValueError, match="unknown finger toe"):
        clf.predict(image, finger="toe")


def test_a_model_without_finger_offsets_refuses_a_finger(tiny_fingerprint_model):
    clf = GenderClassifier.load(tiny_fingerprint_model)
    assert clf.info()["fingers"] == []
    with pytest.raises(ValueError, match="no per-finger calibration"):
        clf.predict(_print(2), finger="thumb")


def test_cli_finger_given_or_read_from_socofing_names(finger_model, tiny_fingerprint_model, tmp_path, write_image,
                                                       capsys):  # fmt: skip
    from genderclass.cli.main import main

    socofing = write_image(tmp_path / "5__F_Right_little_finger.png", _print(3))
    other = write_image(tmp_path / "scan.png", _print(4))
    assert main(["predict", "--model", str(finger_model), "--finger", "auto", str(socofing), str(other)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["faces"][0]["finger"] == "little" and "finger" not in lines[1]["faces"][0]
    assert main(["predict", "--model", str(finger_model), "--finger", "thumb", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["finger"] == "thumb"
    # a model without offsets: a usage error before any output
    assert main(["predict", "--model", str(tiny_fingerprint_model), "--finger", "thumb", str(other)]) == 2
    assert capsys.readouterr().out == ""


def test_an_ensembles_architecture_is_summarised(finger_model):
    """info() (the web page's model line) counts repeated member architectures instead of listing 25."""
    meta = json.loads(finger_model.with_suffix(".json").read_text())
    meta["architecture"] = " + ".join(["small_resnet"] * 25 + ["mobilenet_v3_small"])
    clf = GenderClassifier(finger_model, meta)
    assert clf.info()["architecture"] == "25 × small_resnet + mobilenet_v3_small"
