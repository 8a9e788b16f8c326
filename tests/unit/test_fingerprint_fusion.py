"""inference/fingerprint_fusion.py on its own (through GenderClassifier: test_fusion_threshold.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from genderclass.inference import fingerprint_fusion as fusion
from genderclass.inference.metadata import migrate

KNOWN = {"offsets": {"thumb": 0.5, "index": -0.25}, "temperature": 1.5, "threshold": 0.4, "min_confidence": 0.1}


def _model(metadata: dict, temperature: float = 2.0) -> SimpleNamespace:
    """What the functions read of a GenderClassifier, with the settings a real one reads."""
    metadata = migrate({"preprocess": {}, "temperature": temperature, **metadata})
    fusion_temperature, fusion_temperatures, finger_known = fusion.fusion_settings(metadata)
    return SimpleNamespace(
        path=Path("prints.onnx"),
        metadata=metadata,
        temperature=temperature,
        fusion_temperature=fusion_temperature,
        fusion_temperatures=fusion_temperatures,
        finger_known=finger_known,
    )


def _settings(metadata: dict, temperature: float) -> tuple:
    return fusion.fusion_settings(migrate({"preprocess": {}, "temperature": temperature, **metadata}))


def test_settings_of_a_model_exported_before_fusion_and_fingers():
    assert _settings({}, 1.25) == (1.25, [], None)
    assert _settings({"finger_known": {"offsets": {}}}, 1.0)[2] is None  # no finger fitted
    assert _settings({"finger_known": "thumb"}, 1.0)[2] is None
    settings = _settings({"fusion_temperature": 0.5, "fusion_temperatures": [2, 1], "finger_known": KNOWN}, 1)
    assert settings == (0.5, [2.0, 1.0], KNOWN)


def test_finger_offsets_read_names_as_given_and_refuse_unknown_fingers():
    model = _model({"finger_known": KNOWN})
    np.testing.assert_array_equal(fusion.finger_offsets(model, [" Thumb ", None, "index", ""]), [0.5, 0, -0.25, 0])
    with pytest.raises(ValueError, match="unknown finger ring; this model knows thumb, index"):
        fusion.finger_offsets(model, ["ring"])
    assert fusion.fingers_of(model, ["a", "b"], ["THUMB", None])[0] == ["thumb", None]
    with pytest.raises(ValueError, match="1 fingers for 2 images"):
        fusion.fingers_of(model, ["a", "b"], ["thumb"])


def test_a_model_without_per_finger_calibration_takes_no_finger():
    model = _model({})
    np.testing.assert_array_equal(fusion.finger_offsets(model, [None, " "]), [0, 0])
    with pytest.raises(ValueError, match="prints.onnx has no per-finger calibration"):
        fusion.finger_offsets(model, ["thumb"])


def test_the_fusion_temperature_by_print_count():
    model = _model({"fusion_temperature": 0.75, "fusion_temperatures": [1.8, 1.0, 0.5]})
    assert fusion.fusion_temperature_for(model) == 0.75  # no count: fitted on whole subjects
    assert fusion.fusion_temperature_for(model, 1) == 2.0  # one print is not a mean: per-print
    assert fusion.fusion_temperature_for(model, 2) == 1.0
    assert fusion.fusion_temperature_for(model, 7) == 0.5  # more prints than fitted: the last
    known = _model({"finger_known": {**KNOWN, "fusion_temperatures": [1.5, 0.9]}})
    assert fusion.fusion_temperature_for(known, 2, finger_known=True) == 0.9
