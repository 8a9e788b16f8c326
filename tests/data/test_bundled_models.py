"""The bundled models on files of their own test split (listed in ``models/<modality>.test_files.txt``).

Skipped until a model is bundled; a bundled model without its test-file list is a packaging error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genderclass.data.readers import read_socofing, read_utkface
from genderclass.evaluation.evaluate import evaluate_samples
from genderclass.inference.bundled import models_dir
from genderclass.inference.classifier import GenderClassifier

pytestmark = pytest.mark.data

N_FILES = 300
SEED = 0


def _bundled(modality: str) -> tuple[GenderClassifier, list[str]]:
    onnx = models_dir() / f"{modality}.onnx"
    if not onnx.is_file():
        pytest.skip(f"no bundled {modality} model yet")
    listing = onnx.with_name(f"{modality}.test_files.txt")
    if not listing.is_file():
        pytest.fail(f"{onnx.name} is bundled without {listing.name} (its test-split file list)")
    names = sorted({Path(line.strip()).name for line in listing.read_text().splitlines() if line.strip()})
    assert len(names) >= N_FILES, f"{listing.name} lists only {len(names)} files"
    return GenderClassifier.load(modality=modality), names


def _pick(samples, names: list[str]):
    chosen = set(np.random.default_rng(SEED).choice(names, N_FILES, replace=False).tolist())
    picked = [s for s in samples if Path(s.path).name in chosen]
    missing = chosen - {Path(s.path).name for s in picked}
    assert not missing, f"test files not in the dataset, e.g. {sorted(missing)[:3]}"
    return picked


def test_test_file_list_matches_the_exported_test_split():
    for modality in ("face", "fingerprint"):
        onnx = models_dir() / f"{modality}.onnx"
        listing = onnx.with_name(f"{modality}.test_files.txt")
        if not (onnx.is_file() and listing.is_file()):
            continue
        meta = json.loads(onnx.with_suffix(".json").read_text())
        n_listed = sum(1 for line in listing.read_text().splitlines() if line.strip())
        assert n_listed == meta["training"]["split_sizes"]["test"], modality
    if not any((models_dir() / f"{m}.onnx").is_file() for m in ("face", "fingerprint")):
        pytest.skip("no bundled model yet")


def test_bundled_face_model_accuracy(utkface_dir, tmp_path):
    clf, names = _bundled("face")
    samples = _pick(read_utkface(utkface_dir).samples, names)
    metrics = evaluate_samples(clf, samples, tmp_path, crop_mode="chip")
    assert metrics["n_unreadable"] == 0
    assert metrics["n"] == N_FILES
    assert metrics["accuracy"] >= 0.90, metrics["accuracy"]


def test_bundled_fingerprint_model_balanced_accuracy(socofing_dir, tmp_path):
    clf, names = _bundled("fingerprint")
    samples = _pick(read_socofing(socofing_dir / "Real").samples, names)
    metrics = evaluate_samples(clf, samples, tmp_path, crop_mode="none")
    assert metrics["n"] == N_FILES
    assert metrics["balanced_accuracy"] >= 0.70, metrics["balanced_accuracy"]


def test_bundled_face_model_finds_and_classifies_a_face_in_a_photo(utkface_dir):
    """A chip placed in a larger photo: the detector finds it and the box covers it."""
    clf, _ = _bundled("face")
    from genderclass.imageio import load_image

    chip = load_image(utkface_dir / "100_0_0_20170112213500903.jpg.chip.jpg")
    photo = np.full((480, 640, 3), 128, np.uint8)
    photo[140:340, 220:420] = chip
    result = clf.predict(photo)
    assert result["error"] is None
    assert len(result["faces"]) >= 1
    x1, y1, x2, y2 = result["faces"][0]["box"]
    assert 200 <= (x1 + x2) / 2 <= 440 and 120 <= (y1 + y2) / 2 <= 360
    assert result["faces"][0]["label"] in {"male", "female", "uncertain"}
