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
from genderclass.evaluation.groups import group_offsets, remove_offsets
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
    offsets = group_offsets(labels, logits, fingers)
    male, female = np.mean([-2, -2, 0, 0]), np.mean([0, 2, 2])
    overall = (male + female) / 2
    assert offsets["thumb"] == pytest.approx((-2 + 0) / 2 - overall)
    assert offsets["little"] == pytest.approx((0 + 2) / 2 - overall)
    # a finger with one label only has no offset; labels alone never make one
    assert "ring" not in group_offsets([0, 1, 0], [0.0, 1.0, 5.0], ["thumb", "thumb", "ring"])
    assert group_offsets([0, 1, 0, 1], [0.0, 3.0, 0.0, 3.0], ["a", "a", "b", "b"]) == {"a": 0.0, "b": 0.0}
    np.testing.assert_allclose(remove_offsets([1.0, 1.0], ["thumb", "little"], offsets),
                               [1.0 - offsets["thumb"], 1.0 - offsets["little"]])  # fmt: skip
    with pytest.raises(ValueError, match="no offset for toe"):
        remove_offsets([1.0], ["toe"], offsets)


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
    # names are read as the web API reads them; a blank finger is no finger
    assert clf.predict(image, finger=" Thumb ")["faces"][0] == clf.predict(image, finger="thumb")["faces"][0]
    assert clf.predict(image, finger="")["faces"][0] == plain


def test_the_finger_calibration_decides_and_abstains(finger_model):
    """Threshold and abstention level come from the per-finger calibration, not the model's."""
    meta = json.loads(finger_model.with_suffix(".json").read_text())
    meta["finger_known"] = {**KNOWN, "min_confidence": 0.99}
    clf = GenderClassifier(finger_model, meta)
    assert clf.min_confidence < 0.99
    face = clf.predict(_print(1), finger="index")["faces"][0]
    assert face["label"] == "uncertain"
    assert face["confidence"] == pytest.approx(float(M.confidence(face["p_female"], KNOWN["threshold"])), abs=1e-6)


def test_a_persons_fused_score_removes_known_fingers_offsets(finger_model):
    """With fingers given, each print's offset is removed before the mean (a person's two thumbs
    must not read as more male), then the temperature for offset-free logits (this model has no
    temperature fitted on fused subjects, so the per-print one with the finger known)."""
    clf = GenderClassifier.load(finger_model)
    assert clf.metadata["fusion_temperature"] is None and not clf.fusion_temperatures
    prints = [_print(11), _print(12)]
    logits = [_logit(clf, clf.predict(p)["faces"][0]) for p in prints]
    fused = clf.predict_person(prints, fingers=["thumb", "little"])
    expected = (logits[0] - KNOWN["offsets"]["thumb"] + logits[1] - KNOWN["offsets"]["little"]) / 2
    assert fused["p_female"] == pytest.approx(1 / (1 + math.exp(-expected / KNOWN["temperature"])), abs=1e-5)
    plain = clf.predict_person(prints)
    assert plain["p_female"] == pytest.approx(1 / (1 + math.exp(-np.mean(logits) / clf.fusion_temperature)), abs=1e-5)
    with pytest.raises(ValueError, match="1 fingers for 2 images"):
        clf.predict_person(prints, fingers=["thumb"])


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
    assert main(["predict", "--model", str(finger_model), "--finger", "Thumb", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["finger"] == "thumb"
    assert main(["predict", "--model", str(finger_model), "--finger", "auto", "--format", "csv", str(socofing)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert dict(zip(header.split(","), row.split(",")))["finger"] == "little"
    # a model without offsets, or a face model: a usage error before any output
    assert main(["predict", "--model", str(tiny_fingerprint_model), "--finger", "thumb", str(other)]) == 2
    assert capsys.readouterr().out == ""


def test_cli_fuse_removes_the_given_fingers_offsets(finger_model, tmp_path, write_image, capsys):
    from genderclass.cli.main import main

    thumbs = [write_image(tmp_path / f"8__M_{hand}_thumb_finger.png", _print(20 + i)) for i, hand in enumerate(("Left", "Right"))]  # fmt: skip
    assert main(["predict", "--model", str(finger_model), "--finger", "auto", "--fuse", *map(str, thumbs)]) == 0
    fused = json.loads(capsys.readouterr().out.splitlines()[-1])
    expected = GenderClassifier.load(finger_model).predict_person(thumbs, fingers=["thumb", "thumb"])
    assert fused["p_female"] == pytest.approx(expected["p_female"], abs=1e-6)
    plain = GenderClassifier.load(finger_model).predict_person(thumbs)
    assert fused["p_female"] > plain["p_female"]  # the thumb's negative offset no longer pulls towards male


def test_cli_finger_needs_a_fingerprint_model(tiny_face_model, tmp_path, write_image, capsys, caplog):
    from genderclass.cli.main import main

    image = write_image(tmp_path / "face.png", _print(9))
    assert main(["predict", "--model", str(tiny_face_model), "--finger", "thumb", str(image)]) == 2
    assert capsys.readouterr().out == "" and "--modality fingerprint" in caplog.text


def test_an_ensembles_architecture_is_summarised(finger_model):
    """info() (the web page's model line) counts repeated member architectures instead of listing 25."""
    meta = json.loads(finger_model.with_suffix(".json").read_text())
    meta["architecture"] = " + ".join(["small_resnet"] * 25 + ["mobilenet_v3_small"])
    clf = GenderClassifier(finger_model, meta)
    assert clf.info()["architecture_summary"] == "25 × small_resnet + mobilenet_v3_small"
    assert clf.info()["architecture"] == meta["architecture"]  # the metadata's own, member by member
