"""The modality registry: one object per modality holds what differs, looked up once by name."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest

from genderclass.config import MODALITIES, PreprocessConfig, TrainConfig
from genderclass.modalities import FACE, FINGERPRINT, NAMES, REGISTRY, Modality, modality_for, modality_of_format

FIELDS = [f.name for f in dataclasses.fields(Modality)]


def test_lookup_by_name_gives_the_modality_of_that_name():
    assert NAMES == MODALITIES == ("face", "fingerprint")
    assert modality_for("face") is FACE and modality_for("fingerprint") is FINGERPRINT
    assert [modality_for(name).name for name in NAMES] == list(NAMES)
    with pytest.raises(TypeError):
        REGISTRY["iris"] = FACE  # type: ignore[index]  # read-only


@pytest.mark.parametrize("name", ["iris", "Face", "", None, ["face"]])
def test_an_unknown_name_is_a_value_error_naming_the_known_ones(name):
    with pytest.raises(ValueError) as raised:
        modality_for(name)  # type: ignore[arg-type]
    assert str(raised.value) == f"unknown modality {name!r}; expected one of ('face', 'fingerprint')"


@pytest.mark.parametrize("name", NAMES)
def test_each_modality_has_a_module_of_its_own(name):
    module = importlib.import_module(f"genderclass.modalities.{name}")
    assert getattr(module, name.upper()) is REGISTRY[name]


def test_every_modality_provides_the_same_attributes_of_the_same_types():
    for spec in REGISTRY.values():
        assert isinstance(spec, Modality)
        assert set(vars(spec)) == set(FIELDS)
        for name in FIELDS:
            value, reference = getattr(spec, name), getattr(FACE, name)
            kind = Mapping if isinstance(reference, Mapping) else type(reference)
            assert isinstance(value, kind), f"{spec.name}.{name} is {value!r}"
            if isinstance(value, tuple):
                assert all(isinstance(item, str) for item in value), f"{spec.name}.{name}"
            if isinstance(value, str) and name != "card_split_grouping":
                assert value, f"{spec.name}.{name} is empty"


def test_names_are_distinct_where_code_tells_the_modalities_apart():
    for name in ("name", "images", "images_title", "reader_format", "card_factors", "card_split_grouping"):
        values = [getattr(spec, name) for spec in REGISTRY.values()]
        assert len(set(values)) == len(values), name


def test_defaults_name_real_settings():
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"modality", "format", "preprocess"}
    preprocess_fields = {f.name for f in dataclasses.fields(PreprocessConfig)} - {"modality"}
    for spec in REGISTRY.values():
        assert set(spec.train_defaults) <= train_fields, spec.name
        assert set(spec.preprocess_defaults) <= preprocess_fields, spec.name
        cfg = TrainConfig.for_modality(spec.name)
        assert (cfg.modality, cfg.preprocess.modality, cfg.format) == (spec.name, spec.name, spec.reader_format)
        assert cfg.augment == spec.augment_geometries[0]


def test_card_templates_use_only_the_documented_fields():
    fields = dict.fromkeys(("dataset", "children", "test_accuracy", "fused_accuracy", "test_subjects"), "X")
    for spec in REGISTRY.values():
        for template in spec.card_caveats:
            assert "{" not in template.format(**fields)


def test_the_threshold_rule():
    pytest.importorskip("torch")
    from genderclass.evaluation.metrics import choose_threshold, sigmoid
    from genderclass.training.calibrate import calibrate

    labels = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    logits = np.array([-2.0, -1.4, -0.8, -0.6, 2.2, 0.3, 0.1, 1.5])
    face, fingerprint = calibrate(labels, logits, FACE.name), calibrate(labels, logits, FINGERPRINT.name)
    assert face["threshold"] == 0.5 and face["temperature"] == fingerprint["temperature"]
    tuned = choose_threshold(labels, sigmoid(logits / fingerprint["temperature"]))
    assert fingerprint["threshold"] == tuned != 0.5


def test_the_default_crop_mode():
    assert [FACE.default_crop_mode(fmt) for fmt in ("utkface", "folder", "csv")] == ["chip", "detect", "detect"]
    assert {FINGERPRINT.default_crop_mode(fmt) for fmt in ("socofing", "utkface", "folder")} == {"none"}


def test_a_reader_format_names_its_modality():
    assert modality_of_format("utkface") is FACE and modality_of_format("socofing") is FINGERPRINT
    assert modality_of_format("csv") is modality_of_format("folder") is modality_of_format("") is None


def test_the_package_imports_nothing_heavy_and_nothing_else_of_genderclass():
    """Bottom of the import graph: config imports it, so it may import nothing of the package
    (no cycle) and nothing heavy (the core install has no torch)."""
    code = (
        "import sys, genderclass.modalities as m; m.modality_for('face');"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('genderclass', 'torch', 'numpy', 'cv2')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert ast.literal_eval(loaded) == sorted(
        ["genderclass", "genderclass.modalities", *(f"genderclass.modalities.{n}" for n in ("base", *NAMES))]
    )


def test_the_finger_names_are_the_fingerprint_modalitys():
    from genderclass.data import readers
    from genderclass.modalities import fingerprint

    assert FINGERPRINT.fingers == fingerprint.FINGERS == ("thumb", "index", "middle", "ring", "little")
    assert FACE.fingers == ()
    # the old place still works for the modules that import from it
    assert (readers.FINGERS, readers.finger_name, readers.finger_in_name) == (
        fingerprint.FINGERS,
        fingerprint.finger_name,
        fingerprint.finger_in_name,
    )


def test_a_model_of_an_unknown_modality_is_refused_before_its_file_is_read(tmp_path):
    from genderclass.inference.classifier import GenderClassifier

    metadata = {"modality": "iris", "preprocess": {"modality": "iris"}}
    with pytest.raises(ValueError, match=r"iris\.json: unknown modality 'iris'; expected one of"):
        GenderClassifier(tmp_path / "iris.onnx", metadata)  # no such file: the modality is checked first


def test_the_particulars_the_training_and_evaluation_code_still_switch_on():
    """What training and evaluation decide by name today, as the modality objects give it."""
    assert (FACE.balance_group, FINGERPRINT.balance_group) == ("race", "finger")  # --balance group
    assert FACE.flip_tta and not FINGERPRINT.flip_tta  # export's mirror test-time augmentation
    assert not FACE.tunes_threshold and FINGERPRINT.tunes_threshold  # calibrate's threshold
    assert not FACE.fuses_per_person and FINGERPRINT.fuses_per_person  # per-subject metrics, --fuse
    assert not FACE.simulates_alterations and FINGERPRINT.simulates_alterations  # test_altered_* metrics
    assert FACE.detects_faces and not FINGERPRINT.detects_faces
    assert FACE.crops_beyond_edge and not FINGERPRINT.crops_beyond_edge
