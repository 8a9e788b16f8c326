"""The readers, grouping and crop on the real datasets (counts and defects from the datasets README)."""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from genderclass.data.readers import read_socofing, read_utkface
from genderclass.data.split import group_ids, split_groups

pytestmark = pytest.mark.data

UTK_IRREGULAR = {
    "14_0_0_2017011022340900.jpg.chip.jpg": ("14", 0, "white"),
    "24_0_1_20170116220224657 .jpg.chip.jpg": ("24", 0, "black"),
    "28_1_2_201701161846515488.jpg.chip.jpg": ("28", 1, "asian"),
    "39_1_20170116174525125.jpg.chip.jpg": ("39", 1, None),
    "55_0_0_20170116232725357jpg.chip.jpg": ("55", 0, "white"),
    "61_1_20170109142408075.jpg.chip.jpg": ("61", 1, None),
    "61_1_20170109150557335.jpg.chip.jpg": ("61", 1, None),
}


@pytest.fixture(scope="module")
def utkface(utkface_dir):
    return read_utkface(utkface_dir)


@pytest.fixture(scope="module")
def socofing_real(socofing_real_dir):
    return read_socofing(socofing_real_dir)


def _sha1(path: str) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def test_utkface_reader_parses_every_file(utkface, utkface_dir):
    n_files = sum(1 for entry in os.scandir(utkface_dir) if entry.is_file())
    assert n_files == 21338
    assert len(utkface.samples) == 21338
    assert utkface.skipped == []
    assert Counter(s.label for s in utkface.samples).keys() == {0, 1}
    assert sum("race" not in s.attrs for s in utkface.samples) == 3
    assert all(0 <= int(s.attrs["age"]) <= 116 for s in utkface.samples)
    by_name = {Path(s.path).name: s for s in utkface.samples}
    for name, (age, label, race) in UTK_IRREGULAR.items():
        sample = by_name[name]
        assert (sample.attrs["age"], sample.label, sample.attrs.get("race")) == (age, label, race), name


def test_socofing_real_subjects(socofing_real, socofing_real_dir):
    names = [e.name for e in os.scandir(socofing_real_dir) if e.is_file()]
    assert len(names) == 5400
    assert len(socofing_real.samples) == 5400 and socofing_real.skipped == []
    prefixes = {name.split("__", 1)[0] for name in names}
    subjects = {s.subject for s in socofing_real.samples}
    assert subjects == prefixes
    assert len(subjects) == 540
    per_subject = defaultdict(list)
    for sample in socofing_real.samples:
        per_subject[sample.subject].append(sample)
    assert all(len(v) == 10 for v in per_subject.values())  # 10 fingers each
    assert all(len({s.label for s in v}) == 1 for v in per_subject.values())
    assert all(len({(s.attrs["hand"], s.attrs["finger"]) for s in v}) == 10 for v in per_subject.values())
    female = sum(v[0].label == 1 for v in per_subject.values())
    assert 3 < (540 - female) / female < 5  # about 4 male subjects per female one


def test_socofing_identical_prints_keep_subjects_together(socofing_real):
    samples = socofing_real.samples
    sha1 = [_sha1(s.path) for s in samples]
    subjects = [s.subject for s in samples]
    groups = group_ids(sha1, subjects=subjects)
    subjects_per_group = defaultdict(set)
    for g, subject in zip(groups.tolist(), subjects):
        subjects_per_group[g].add(subject)
    assert any(len(v) > 1 for v in subjects_per_group.values()), "README: identical prints under different ids"
    for seed in (0, 1):
        split = split_groups([s.label for s in samples], groups, seed=seed).split
        sides_by_subject, sides_by_sha = defaultdict(set), defaultdict(set)
        for subject, sha, side in zip(subjects, sha1, split.tolist()):
            sides_by_subject[subject].add(side)
            sides_by_sha[sha].add(side)
        assert all(len(v) == 1 for v in sides_by_subject.values())
        assert all(len(v) == 1 for v in sides_by_sha.values())


def test_utkface_duplicates_and_conflicts(utkface):
    samples = utkface.samples
    sha1 = [_sha1(s.path) for s in samples]
    groups = group_ids(sha1)
    sizes = Counter(groups.tolist())
    duplicate_groups = [g for g, n in sizes.items() if n > 1]
    assert len(duplicate_groups) >= 100  # "hundreds of groups"
    labels = np.array([s.label for s in samples])
    result = split_groups(labels, groups, seed=0)
    assert result.n_conflicting_groups > 0  # some duplicates carry contradicting gender labels
    sides_by_sha = defaultdict(set)
    for sha, side in zip(sha1, result.split.tolist()):
        sides_by_sha[sha].add(side)
    assert all(len(v) == 1 for v in sides_by_sha.values())
    for name in ("train", "val", "test"):
        share = (result.split == name).mean()
        assert share == pytest.approx({"train": 0.75, "val": 0.1, "test": 0.15}[name], abs=0.02)


def test_detector_finds_the_face_in_real_chips(utkface):
    """Training chips are cropped by detecting the face in the padded chip (as at inference)."""
    from genderclass.config import PreprocessConfig
    from genderclass.faces.detect import default_detector
    from genderclass.imageio import load_image
    from genderclass.preprocess import crop_chip

    adults = [s for s in utkface.samples if 20 <= int(s.attrs["age"]) <= 60]
    rng = np.random.default_rng(0)
    chosen = [adults[i] for i in rng.choice(len(adults), 20, replace=False)]
    detector = default_detector()
    cfg = PreprocessConfig()
    found = 0
    for sample in chosen:
        rgb = load_image(sample.path)
        crop, detected = crop_chip(rgb, cfg, detector)
        assert crop.pixels.shape == (cfg.input_size, cfg.input_size, 3)
        if detected:
            found += 1
            x1, y1, x2, y2 = crop.box
            assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 200
            assert (x2 - x1) > 50  # a face, not a speck
    assert found >= 17


def test_onnx_detector_crops_real_chips_like_the_library_it_came_from(utkface):
    """The bundled model was trained on crops from the C++ library; the ONNX graph that now runs by
    default must give the same crops (200 random chips, all ages)."""
    pytest.importorskip("yuface")
    from genderclass.config import PreprocessConfig
    from genderclass.faces.detect import default_detector
    from genderclass.imageio import load_image
    from genderclass.preprocess import crop_chip

    rng = np.random.default_rng(1)
    chosen = [utkface.samples[i] for i in rng.choice(len(utkface.samples), 200, replace=False)]
    onnx_graph, native = default_detector(backend="onnx"), default_detector(backend="libfacedetection")
    cfg = PreprocessConfig()
    detected = differing = 0
    for sample in chosen:
        rgb = load_image(sample.path)
        (a, found_a), (b, found_b) = crop_chip(rgb, cfg, onnx_graph), crop_chip(rgb, cfg, native)
        assert found_a == found_b, sample.path
        if a.box is not None:
            np.testing.assert_allclose(a.box, b.box, atol=1)
        differing += not np.array_equal(a.pixels, b.pixels)
        detected += found_a
    assert detected >= 180
    # float rounding before the C++ integer casts can move one landmark by 1 px (1 of 3,184 test chips)
    assert differing <= 2
