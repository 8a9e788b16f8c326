"""inference/metadata.py: the one reader of a model's metadata, and what it fills for older formats."""

from __future__ import annotations

import json

import pytest

from genderclass.inference.bundled import bundled_model_path
from genderclass.inference.metadata import DEFAULTS, METADATA_VERSION, migrate, read_metadata


def test_a_model_exported_before_format_version_gets_what_it_did():
    old = {"preprocess": {"modality": "fingerprint", "input_size": 96}, "temperature": 0.8}
    migrated = migrate(old)
    assert migrated["modality"] == "fingerprint"  # from its preprocessing, as it was read before
    assert migrated["threshold"] == 0.5 and migrated["min_confidence"] == 0.0
    assert migrated["labels"] == ["male", "female"] and migrated["finger_known"] is None
    assert migrated["fusion_temperature"] is None  # not fitted on subjects
    assert migrated["fusion_temperatures"] == [] and migrated["confidence_scale"] is None
    assert migrated["evaluations"] == []  # before evaluations on other data were stored with the model
    assert old == {"preprocess": {"modality": "fingerprint", "input_size": 96}, "temperature": 0.8}  # a copy
    migrated["fusion_temperatures"].append(1.0)
    migrated["evaluations"].append({"name": "x", "metrics": {}})
    assert DEFAULTS["fusion_temperatures"] == [] and DEFAULTS["evaluations"] == []  # not shared between models


def test_stored_fields_win_over_defaults():
    stored = {"format_version": 1, "preprocess": {}, "modality": "face", "threshold": 0.47, "fusion_temperature": 0.4}
    stored["evaluations"] = [{"name": "celeba", "metrics": {"n": 3}}]
    migrated = migrate(stored)
    assert migrated["threshold"] == 0.47 and migrated["fusion_temperature"] == 0.4
    assert migrated["evaluations"] == [{"name": "celeba", "metrics": {"n": 3}}]
    assert migrate(migrated) == migrated  # reading twice changes nothing


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([1, 2], "is not a JSON object"),
        ({"threshold": 0.5}, "no 'preprocess'"),
        ({"preprocess": {}, "format_version": METADATA_VERSION + 1}, "newer than this genderclass reads"),
        ({"preprocess": {}, "format_version": "1"}, "invalid format_version"),
    ],
)
def test_metadata_that_cannot_be_read_is_refused(metadata, message):
    with pytest.raises(ValueError, match=message):
        migrate(metadata)


def test_read_metadata_names_the_file(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"model metadata {path} is not valid JSON"):
        read_metadata(path)
    path.write_text(json.dumps({"preprocess": {}, "format_version": 99}))
    with pytest.raises(ValueError, match=f"model metadata {path} has metadata format 99"):
        read_metadata(path)


@pytest.mark.parametrize("modality", ["face", "fingerprint"])
def test_bundled_models_are_of_the_current_format_and_read_unchanged(modality):
    path = bundled_model_path(modality).with_suffix(".json")
    stored = json.loads(path.read_text())
    assert stored["format_version"] == METADATA_VERSION
    assert read_metadata(path) == stored  # read as stored
    migrated = migrate(stored)
    assert {k: migrated[k] for k in stored} == stored  # nothing stored is changed, only absent fields filled
