"""The crop is defined once: the training cache, evaluation and every prediction path use the same
function (``genderclass.faces.crop.crop_face`` through ``genderclass.preprocess``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import genderclass.data.cache as cache_module
import genderclass.evaluation.evaluate as evaluate_module
import genderclass.faces.crop as crop_module
import genderclass.inference.classifier as classifier_module
import genderclass.preprocess as preprocess_module
from genderclass.config import PreprocessConfig
from genderclass.data.cache import build_cache
from genderclass.data.readers import Sample
from genderclass.faces.detect import Face
from genderclass.imageio import load_image
from genderclass.inference.classifier import GenderClassifier
from genderclass.preprocess import crop_chip, crops_for_image, make_crop, to_batch


def test_single_crop_function_everywhere():
    assert preprocess_module.crop_face is crop_module.crop_face
    assert preprocess_module.pad_chip is crop_module.pad_chip
    # training cache builder and chip-mode evaluation crop through preprocess.crop_chip -> make_crop
    assert cache_module.crop_chip is preprocess_module.crop_chip
    assert evaluate_module.crop_chip is preprocess_module.crop_chip
    # the classifier (CLI, Python API, web) crops through preprocess.crops_for_image -> make_crop
    assert classifier_module.crops_for_image is preprocess_module.crops_for_image
    assert classifier_module.to_batch is preprocess_module.to_batch


def test_cache_and_classifier_call_the_same_crop_function(tmp_path, monkeypatch, tiny_face_model, write_image):
    """Replace crop_face at its single definition point: both the cache and the classifier see it."""
    calls: list[tuple[int, int]] = []
    original = crop_module.crop_face

    def spy(rgb, face, size, margin, align=True, border_value=None):
        if border_value is None:  # the crop itself; the cache also maps its edge (outside_image)
            calls.append(rgb.shape[:2])
        return original(rgb, face, size, margin, align, border_value)

    monkeypatch.setattr(preprocess_module, "crop_face", spy)
    path = write_image(tmp_path / "a.png", np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8))
    cfg = PreprocessConfig(input_size=32, detect=False)
    build_cache([Sample(path=str(path), label=0)], cfg, tmp_path / "cache", workers=1)
    assert calls == [(40, 30)]
    clf = GenderClassifier.load(tiny_face_model)
    clf.predict(str(path), detect=False)
    assert calls == [(40, 30), (40, 30)]


class _RecordingSession:
    """Wraps an onnxruntime session and records every input batch."""

    def __init__(self, session):
        self.session = session
        self.inputs: list[np.ndarray] = []

    def run(self, outputs, feed):
        (batch,) = feed.values()
        self.inputs.append(batch.copy())
        return self.session.run(outputs, feed)

    def __getattr__(self, name):
        return getattr(self.session, name)


def test_classifier_feeds_exactly_the_training_crop(tmp_path, tiny_face_model, write_image):
    rng = np.random.default_rng(5)
    paths = [
        write_image(tmp_path / "wide.png", rng.integers(0, 256, (30, 70, 3), dtype=np.uint8)),
        write_image(tmp_path / "tall.jpg", rng.integers(0, 256, (90, 40, 3), dtype=np.uint8), quality=90),
    ]
    clf = GenderClassifier.load(tiny_face_model)
    recorder = _RecordingSession(clf.session)
    clf.session = recorder
    results = clf.predict_batch([str(p) for p in paths], detect=False)
    assert len(recorder.inputs) == 1  # one true batch for both images
    expected = to_batch([make_crop(load_image(p), None, clf.preprocess).pixels for p in paths])
    np.testing.assert_array_equal(recorder.inputs[0], expected)
    assert recorder.inputs[0].shape == (2, 3, 32, 32) and recorder.inputs[0].dtype == np.float32

    # the training cache stores the same pixels for these files (detection off, as with --no-detect)
    cfg = dataclasses.replace(clf.preprocess, detect=False)
    cache = build_cache([Sample(path=str(p), label=1) for p in paths], cfg, tmp_path / "cache", workers=1)
    by_path = dict(zip(cache.paths.tolist(), cache.images))
    stored = to_batch([by_path[str(p)] for p in paths])
    np.testing.assert_array_equal(stored, expected)
    # and the logits reported equal the network on those pixels
    logits = clf.session.session.run(None, {clf.input_name: expected})[0].reshape(-1)
    assert [r["faces"][0]["p_female"] for r in results] == pytest.approx(clf.probability(logits).tolist(), abs=1e-6)


class _FaceAt:
    """A stand-in detector that reports faces at fixed boxes (in the coordinates it is given)."""

    def __init__(self, faces):
        self.faces = faces

    def detect(self, rgb):
        return list(self.faces)


def _face(x, y, size, angle=12.0):
    cx, cy = x + size / 2, y + size / 2
    dx, dy = 0.2 * size * np.cos(np.radians(angle)), 0.2 * size * np.sin(np.radians(angle))
    marks = np.array([[cx + dx, cy - 0.1 * size + dy], [cx - dx, cy - 0.1 * size - dy], [cx, cy], [cx, cy], [cx, cy]])
    return Face(box=(x, y, x + size, y + size), score=0.9, landmarks=marks)


def test_chip_crop_equals_photo_crop_of_the_same_face():
    """A training chip and a photo containing that chip give the same crop for the same face."""
    rng = np.random.default_rng(7)
    chip = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
    cfg = PreprocessConfig(input_size=32, margin=0.05, chip_pad=0.25)
    pad = round(60 * cfg.chip_pad)
    # face at (15, 15)-(45, 45) inside the chip, as the detector would report it in each image
    chip_crop, detected = crop_chip(chip, cfg, _FaceAt([_face(15 + pad, 15 + pad, 30)]))
    assert detected
    assert chip_crop.box == [15, 15, 45, 45]  # mapped back from padded to chip coordinates
    photo = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    photo[40:100, 70:130] = chip
    (photo_crop,) = crops_for_image(photo, cfg, _FaceAt([_face(70 + 15, 40 + 15, 30)]))
    diff = np.abs(chip_crop.pixels.astype(int) - photo_crop.pixels.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_crop_chip_prefers_the_central_face_and_falls_back_to_the_chip():
    chip = np.random.default_rng(8).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    cfg = PreprocessConfig(input_size=24, chip_pad=0.25)
    pad = 20
    central = _face(25 + pad, 25 + pad, 30)
    corner = dataclasses.replace(_face(0, 0, 25), score=0.99)
    crop, detected = crop_chip(chip, cfg, _FaceAt([corner, central]))
    assert detected and crop.box == [25, 25, 55, 55]
    shifted = dataclasses.replace(central, box=tuple(v - pad for v in central.box), landmarks=central.landmarks - pad)
    np.testing.assert_array_equal(crop.pixels, make_crop(chip, shifted, cfg).pixels)

    fallback, detected = crop_chip(chip, cfg, _FaceAt([]))
    assert not detected and fallback.box == [0, 0, 80, 80]
    np.testing.assert_array_equal(fallback.pixels, make_crop(chip, None, cfg).pixels)
    # fingerprints never go through the detector
    fp = PreprocessConfig.for_modality("fingerprint", input_size=24)
    crop, detected = crop_chip(chip, fp, _FaceAt([central]))
    assert not detected and crop.pixels.shape == (24, 24, 1)


def test_outside_image_marks_what_the_crop_takes_from_beyond_the_chip():
    """A face box reaching over the chip's top edge: the crop repeats that edge there, and
    ``outside_image`` (same geometry) marks exactly those rows; the rest of the crop is inside."""
    cfg = PreprocessConfig(input_size=40, margin=0.0, align=False)
    chip = np.zeros((100, 100, 3), dtype=np.uint8)
    chip[:, :, 0] = np.arange(100, dtype=np.uint8)[:, None]  # red = row index
    face = Face(box=(20.0, -20.0, 80.0, 40.0), score=0.9, landmarks=None)  # rows -20..40: a third above the chip
    outside = preprocess_module.outside_image(100, 100, face, cfg)
    assert outside.shape == (40, 40)
    assert outside[:10].all() and not outside[16:].any()  # about the top third (13 of 40 rows)
    crop = make_crop(chip, face, cfg).pixels
    assert (crop[:10, :, 0] == 0).all()  # repeated top edge where the mask says "outside"
    assert crop[20:, :, 0].min() > 0
    # no face (pre-cropped input): a square image is all inside, a tall one is padded at the sides
    assert not preprocess_module.outside_image(100, 100, None, cfg).any()
    tall = preprocess_module.outside_image(100, 50, None, cfg)
    assert tall[:, :8].all() and tall[:, -8:].all() and not tall[:, 12:28].any()
