"""Per-person fusion (mean of logits, then temperature), decisions, and operating-point selection."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from genderclass import calibration as cal
from genderclass.evaluation import metrics as M
from genderclass.evaluation.fusion import (
    by_print_count,
    fuse_by_subject,
    fuse_subsets,
    items_per_subject,
    largest_count,
    per_subject_metrics,
)
from genderclass.inference.classifier import GenderClassifier


class _LogitByBrightness:
    """A stand-in ONNX session: the logit of an image is a fixed function of its mean pixel value."""

    def __init__(self, table: dict[int, float]):
        self.table = table
        self.batches: list[int] = []

    def run(self, outputs, feed):
        (batch,) = feed.values()
        self.batches.append(len(batch))
        means = batch.reshape(len(batch), -1).mean(axis=1).round().astype(int)
        return [np.array([self.table[int(m)] for m in means], dtype=np.float32).reshape(-1, 1)]


@pytest.fixture
def fingerprint_classifier(tiny_fingerprint_model):
    clf = GenderClassifier.load(tiny_fingerprint_model)
    clf.session = _LogitByBrightness({20: 2.0, 100: -1.0, 200: 5.0, 50: -4.0})
    clf.temperature = clf.fusion_temperature = 2.0
    clf.threshold = 0.5
    clf.min_confidence = 0.0
    return clf


def _flat(value: int) -> np.ndarray:
    return np.full((103, 96, 3), value, np.uint8)


def test_predict_person_is_mean_logit_then_temperature(fingerprint_classifier):
    clf = fingerprint_classifier
    result = clf.predict_person([_flat(20), _flat(100), _flat(200)])
    assert set(result) == {"paths", "n", "label", "p_female", "confidence"}
    assert result["n"] == 3
    assert clf.session.batches == [3]  # one batch
    expected = 1 / (1 + math.exp(-((2.0 - 1.0 + 5.0) / 3) / 2.0))
    assert result["p_female"] == pytest.approx(expected, abs=1e-6)
    # not the mean of the per-image probabilities, nor temperature applied before averaging probabilities
    mean_prob = np.mean([1 / (1 + math.exp(-z / 2.0)) for z in (2.0, -1.0, 5.0)])
    assert abs(result["p_female"] - mean_prob) > 0.01
    assert result["label"] == "female"
    assert result["confidence"] == pytest.approx(expected, abs=1e-6)
    # the mean, not the median (2.0 - 1.0 + 5.0 has mean and median 2): logits 2, 5 and -4 average 1
    skewed = clf.predict_person([_flat(20), _flat(200), _flat(50)])
    assert skewed["p_female"] == pytest.approx(1 / (1 + math.exp(-1.0 / 2.0)), abs=1e-6)


def test_predict_person_counts_a_print_given_twice_once(fingerprint_classifier, tmp_path):
    """The Python API dedupes by content as the CLI does: a repeated print must not outweigh the others."""
    from PIL import Image

    clf = fingerprint_classifier
    first = tmp_path / "1__F_Left_index_finger.png"
    Image.fromarray(_flat(20)).save(first)
    copy = tmp_path / "copy.png"
    copy.write_bytes(first.read_bytes())
    result = clf.predict_person([str(first), str(copy), _flat(100), _flat(100)])
    assert result["n"] == 2 and result["paths"] == [str(first), None]
    assert result["p_female"] == pytest.approx(1 / (1 + math.exp(-((2.0 - 1.0) / 2) / 2.0)), abs=1e-6)


def test_predict_person_takes_a_list_not_one_path(fingerprint_classifier, tmp_path):
    """One path (or one array) is refused as predict_batch refuses it, not fused as its characters
    (rows); any iterable of images works, as in predict_batch."""
    from PIL import Image

    clf = fingerprint_classifier
    print_file = tmp_path / "1__F_Left_index_finger.png"
    Image.fromarray(_flat(20)).save(print_file)
    for one in (str(print_file), print_file, print_file.read_bytes(), _flat(20)):
        with pytest.raises(TypeError, match="a list"):
            clf.predict_person(one)
    from_generator = clf.predict_person(image for image in (_flat(20), _flat(100)))
    assert from_generator == clf.predict_person([_flat(20), _flat(100)])
    assert clf.predict_person((str(print_file),))["paths"] == [str(print_file)]


def test_predict_person_uses_the_fusion_temperature(fingerprint_classifier):
    """A person's mean logit has its own temperature (fitted on validation subjects); single images
    keep the per-image one."""
    clf = fingerprint_classifier
    clf.fusion_temperature = 0.5
    fused = clf.predict_person([_flat(20), _flat(100)])
    assert fused["p_female"] == pytest.approx(1 / (1 + math.exp(-((2.0 - 1.0) / 2) / 0.5)), abs=1e-6)
    single = clf.predict(_flat(20))["faces"][0]
    assert single["p_female"] == pytest.approx(1 / (1 + math.exp(-2.0 / 2.0)), abs=1e-6)


def test_fusion_temperature_is_fitted_on_subject_means():
    """Fused scores that are under-confident get a temperature below 1 (sharper), and it is the
    temperature of the subjects' mean logits, not of the single images."""
    from genderclass.training.calibrate import fusion_temperature

    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(200).astype(str), 10)
    labels = np.repeat(rng.integers(0, 2, 200), 10)
    # per-image logits: a weak per-subject signal (+-0.6) buried in independent noise
    logits = np.where(labels == 1, 0.6, -0.6) + rng.normal(0, 2.0, labels.size)
    t_fused = fusion_temperature(subjects, labels, logits)
    _, fused_labels, fused_logits = fuse_by_subject(subjects.tolist(), labels, logits)
    assert t_fused == pytest.approx(M.fit_temperature(fused_logits, fused_labels))
    assert t_fused < 1.0 < M.fit_temperature(logits, labels)


def test_predict_person_skips_unreadable_and_reports_paths(fingerprint_classifier, tmp_path):
    clf = fingerprint_classifier
    from PIL import Image

    good = tmp_path / "1__F_Left_index_finger.png"
    Image.fromarray(_flat(50)).save(good)
    bad = tmp_path / "1__F_Left_thumb_finger.png"
    bad.write_text("not a print")
    result = clf.predict_person([str(good), str(bad), _flat(100)])
    assert result["n"] == 2
    assert result["paths"] == [str(good), None]  # arrays have no path
    expected = 1 / (1 + math.exp(-((-4.0 - 1.0) / 2) / 2.0))
    assert result["p_female"] == pytest.approx(expected, abs=1e-6)
    assert result["label"] == "male" and result["confidence"] == pytest.approx(1 - expected, abs=1e-6)
    with pytest.raises(ValueError):
        clf.predict_person([str(bad)])


def test_predict_person_min_confidence(fingerprint_classifier):
    clf = fingerprint_classifier
    # logits 2 and -1 -> mean 0.5 -> p = sigmoid(0.25) = 0.562: uncertain at 0.6, decided at 0 (disabled)
    assert clf.predict_person([_flat(20), _flat(100)], min_confidence=0.6)["label"] == "uncertain"
    assert clf.predict_person([_flat(20), _flat(100)], min_confidence=0)["label"] == "female"


def test_decide_uses_threshold_and_min_confidence(tiny_fingerprint_model):
    clf = GenderClassifier.load(tiny_fingerprint_model)
    clf.threshold, clf.min_confidence = 0.4, 0.6
    # confidence: the label's probability with the log-odds shifted so that the threshold sits at 0.5
    # (0.45 -> 0.45*0.6 / (0.45*0.6 + 0.55*0.4) = 0.551; 0.39 -> 1 - 0.234 / 0.478 = 0.510)
    assert clf.decide(0.45, min_confidence=0) == {"label": "female", "p_female": 0.45, "confidence": 0.55102}
    assert clf.decide(0.39, min_confidence=0) == {"label": "male", "p_female": 0.39, "confidence": 0.510460}
    assert clf.decide(0.4, min_confidence=0) == {"label": "female", "p_female": 0.4, "confidence": 0.5}
    assert clf.decide(0.45)["label"] == "uncertain"  # model default 0.6 applies when None
    assert clf.decide(0.2) == {"label": "male", "p_female": 0.2, "confidence": 0.727273}
    assert clf.decide(0.123456789, min_confidence=0)["p_female"] == 0.123457
    # a confidence equal to min_confidence answers (evaluation counts it as answered too)
    clf.threshold = 0.5
    assert clf.decide(0.75, min_confidence=0.75) == {"label": "female", "p_female": 0.75, "confidence": 0.75}
    assert clf.decide(0.25, min_confidence=0.75)["label"] == "male"
    assert clf.decide(0.74, min_confidence=0.75)["label"] == "uncertain"


def test_probability_applies_temperature(tiny_face_model):
    clf = GenderClassifier.load(tiny_face_model)
    clf.temperature = 4.0
    np.testing.assert_allclose(clf.probability(np.array([0.0, 4.0, -8.0])), M.sigmoid(np.array([0.0, 1.0, -2.0])))


def _balanced_accuracy(labels: np.ndarray, p: np.ndarray, t: float) -> float:
    pred = p >= t
    return 0.5 * (pred[labels == 1].mean() + (~pred[labels == 0]).mean())


@pytest.mark.parametrize("seed", range(6))
def test_choose_threshold_maximises_balanced_accuracy(seed):
    rng = np.random.default_rng(seed)
    n_pos, n_neg = int(rng.integers(5, 40)), int(rng.integers(40, 200))  # imbalanced like SOCOFing
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    # scores biased low (a model trained on mostly-male data): 0.5 is not the best cut
    p = np.clip(np.r_[rng.normal(0.4, 0.12, n_pos), rng.normal(0.25, 0.12, n_neg)], 0.001, 0.999).round(3)
    t = M.choose_threshold(labels, p)
    best_possible = max(_balanced_accuracy(labels, p, c) for c in np.r_[np.unique(p), 1.1])
    assert _balanced_accuracy(labels, p, t) == pytest.approx(best_possible, abs=1e-12)
    assert 0.0 < t < 1.0
    assert _balanced_accuracy(labels, p, t) >= _balanced_accuracy(labels, p, 0.5)


def test_choose_threshold_edge_cases():
    assert M.choose_threshold([1, 1, 1], [0.2, 0.3, 0.9]) == 0.5  # one class only
    assert M.choose_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.5  # 0.5 already separates: keep it
    t = M.choose_threshold([0, 0, 1, 1], [0.05, 0.1, 0.2, 0.3])
    assert 0.1 < t <= 0.2  # separates the classes


def test_export_calibration_per_modality():
    pytest.importorskip("torch")
    from genderclass.training.calibrate import calibrate

    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(30, int), np.zeros(120, int)]
    logits = np.r_[rng.normal(0.5, 1.5, 30), rng.normal(-2.0, 1.5, 120)] * 3  # over-confident, shifted
    face = calibrate(labels, logits, "face")
    fp = calibrate(labels, logits, "fingerprint")
    assert face["threshold"] == 0.5  # faces: balanced classes, fixed threshold
    assert face["temperature"] == pytest.approx(M.fit_temperature(logits, labels))
    assert face["temperature"] > 1.5  # over-confident logits are softened
    p = M.sigmoid(logits / fp["temperature"])
    assert fp["threshold"] == pytest.approx(M.choose_threshold(labels, p))
    assert fp["threshold"] != 0.5
    assert 0.5 <= fp["min_confidence"] < 1.0
    assert all(isinstance(v, float) for d in (face, fp) for v in d.values())


def test_a_model_fitted_on_the_old_confidence_scale_warns(tiny_fingerprint_model, caplog):
    """Exports before the threshold-centred confidence fitted min_confidence on max(p, 1 - p)."""
    metadata = json.loads(tiny_fingerprint_model.with_suffix(".json").read_text())
    assert metadata["threshold"] != 0.5
    caplog.set_level(logging.WARNING, logger="genderclass")
    GenderClassifier(tiny_fingerprint_model, metadata)
    assert "export it again" not in caplog.text
    del metadata["confidence_scale"]
    GenderClassifier(tiny_fingerprint_model, metadata)
    assert "was exported before confidence was centred on its threshold" in caplog.text
    caplog.clear()
    GenderClassifier(tiny_fingerprint_model, {**metadata, "threshold": 0.5})  # the scale is the same there
    assert "export it again" not in caplog.text


def _weak_subjects(n_subjects: int = 300, prints: int = 10, seed: int = 0):
    """Subjects whose prints carry a weak shared signal (+-0.6) under independent noise."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(n_subjects).astype(str), prints)
    labels = np.repeat(rng.integers(0, 2, n_subjects), prints)
    logits = np.where(labels == 1, 0.6, -0.6) + rng.normal(0, 2.0, labels.size)
    return subjects, labels, logits


def test_fuse_subsets_draws_k_prints_of_one_subject():
    subjects = np.array(["a"] * 4 + ["b"] * 2 + ["c"])
    labels = np.array([1] * 4 + [0] * 2 + [1])
    logits = np.array([1.0, 2.0, 3.0, 4.0, -1.0, -3.0, 9.0])
    y, z = fuse_subsets(subjects, labels, logits, k=4, draws=5)
    assert y.tolist() == [1] * 5 and z.tolist() == [2.5] * 5  # all of a's prints; b and c have fewer
    y, z = fuse_subsets(subjects, labels, logits, k=2, draws=5)
    assert y.tolist() == [1] * 5 + [0] * 5  # every subject weighs the same: b's only pair five times
    assert set(z[:5]) <= {1.5, 2.0, 2.5, 3.0, 3.5} and z[5:].tolist() == [-2.0] * 5
    y, z = fuse_subsets(subjects, labels, logits, k=1, draws=3)
    assert len(z) == 3 * 3 and set(z[:3]) <= {1.0, 2.0, 3.0, 4.0} and z[6:].tolist() == [9.0] * 3
    # the order the items come in does not matter
    order = np.array([6, 3, 5, 0, 2, 4, 1])
    assert np.array_equal(
        fuse_subsets(subjects[order], labels[order], logits[order], k=2, draws=5)[1],
        z2 := fuse_subsets(subjects, labels, logits, k=2, draws=5)[1],
    )
    assert len(z2) == 10
    with pytest.raises(ValueError):
        fuse_subsets(subjects, labels, logits, k=0)


def test_temperature_by_count_reads_the_table():
    table = [0.8, 0.5, 0.4]
    assert cal.temperature_by_count(1, table, 0.3) == 0.8
    assert cal.temperature_by_count(3, table, 0.3) == 0.4
    assert cal.temperature_by_count(10, table, 0.3) == 0.4  # more prints than the table: its last entry
    assert cal.temperature_by_count([2, 1, 7], table, 0.3).tolist() == [0.5, 0.8, 0.4]
    assert cal.temperature_by_count(2, [], 0.3) == 0.3  # no table (older models): the one temperature
    assert cal.temperature_by_count([2, 5], [], 0.3).tolist() == [0.3, 0.3]
    # one item is not a mean: with the per-item temperature given, it is used for a count of one
    assert cal.temperature_by_count(1, table, 0.3, single=0.9) == 0.9
    assert cal.temperature_by_count([1, 2, 1], table, 0.3, single=0.9).tolist() == [0.9, 0.5, 0.9]
    assert cal.temperature_by_count([1, 4], [], 0.3, single=0.9).tolist() == [0.9, 0.3]
    with pytest.raises(ValueError):
        cal.temperature_by_count(0, table, 0.3)


def test_largest_count_needs_enough_subjects():
    assert largest_count(["a", "a", "a", "b", "b", "b", "c"]) == 1  # three subjects: all must reach it
    assert largest_count(["a", "a", "a", "b", "b", "b", "c"], min_subjects=2) == 3
    many = [f"s{i}" for i in range(30) for _ in range(2)] + [f"t{i}" for i in range(25) for _ in range(10)]
    assert largest_count(many) == 10  # 25 subjects with ten prints are enough
    few = [f"s{i}" for i in range(30) for _ in range(2)] + [f"t{i}" for i in range(5) for _ in range(10)]
    assert largest_count(few) == 2  # five with ten are not
    assert largest_count([]) == 1
    assert items_per_subject([1, 1, 2, "2", 3], ["1", 2, "4"]) == [2, 2, 0]  # named by str, as fused


def test_fusion_temperatures_shrink_with_the_number_of_prints():
    """Averaging k noisy prints removes more noise as k grows: the fitted temperature falls from
    about the per-print one (k = 1) to the whole-subject one (k = all)."""
    from genderclass.training.calibrate import fusion_temperature, fusion_temperatures

    subjects, labels, logits = _weak_subjects()
    table = fusion_temperatures(subjects, labels, logits)
    assert len(table) == 10
    # weak signal: the likelihood is flat in T, so one print's fit is close to, not equal to, all prints'
    assert table[0] == pytest.approx(M.fit_temperature(logits, labels), rel=0.2) and table[0] > 5 * table[-1]
    assert table[-1] == pytest.approx(fusion_temperature(subjects, labels, logits))
    assert all(a > b for a, b in zip(table, table[1:], strict=False))


def test_fuse_uses_the_temperature_for_its_number_of_prints(fingerprint_classifier):
    clf = fingerprint_classifier
    # the table's one-print entry (fitted on one-print subsets) differs a little from the per-print
    # temperature; one print is not a mean, so it gets the per-print one and answers as predict does
    clf.fusion_temperature, clf.fusion_temperatures = 0.25, [clf.temperature * 1.3, 1.0, 0.5]
    one = clf.predict_person([_flat(20)])
    assert one["p_female"] == pytest.approx(clf.predict(_flat(20))["faces"][0]["p_female"], abs=1e-6)
    two = clf.predict_person([_flat(20), _flat(100)])
    assert two["p_female"] == pytest.approx(1 / (1 + math.exp(-((2.0 - 1.0) / 2) / 1.0)), abs=1e-6)
    four = clf.predict_person([_flat(20), _flat(100), _flat(200), _flat(50)])
    assert four["p_female"] == pytest.approx(1 / (1 + math.exp(-((2.0 - 1.0 + 5.0 - 4.0) / 4) / 0.5)), abs=1e-6)
    assert clf.info()["fusion_temperatures"] == [clf.temperature * 1.3, 1.0, 0.5]


def test_fuse_with_every_finger_named_uses_the_finger_known_calibration(fingerprint_classifier):
    """One print fused with its finger named answers as predict does with that finger: the offset
    removed, then the temperature and threshold fitted without the offsets."""
    clf = fingerprint_classifier
    clf.fusion_temperatures = [2.0, 1.0]
    offsets = {"thumb": -0.5, "index": 0.0, "middle": 0.0, "ring": 0.0, "little": 0.5}
    clf.finger_known = {
        "offsets": offsets,
        "temperature": 1.5,
        "threshold": 0.6,
        "min_confidence": 0.0,
        "fusion_temperatures": [1.7, 0.75],
    }  # fmt: skip  (one print: 1.5, not 1.7)
    fused = clf.fuse([2.0], ["a"], fingers=["thumb"])
    single = clf.predict(_flat(20), finger="thumb")["faces"][0]
    assert fused["p_female"] == pytest.approx(single["p_female"], abs=1e-6)
    assert fused["p_female"] == pytest.approx(1 / (1 + math.exp(-2.5 / 1.5)), abs=1e-6)
    assert fused["confidence"] == pytest.approx(single["confidence"], abs=1e-6)  # the same threshold
    two = clf.fuse([2.0, -1.0], ["a", "b"], fingers=["thumb", "little"])
    assert two["p_female"] == pytest.approx(1 / (1 + math.exp(-((2.5 - 1.5) / 2) / 0.75)), abs=1e-6)
    # a finger missing: offsets of the named ones removed, the plain table for two prints
    mixed = clf.fuse([2.0, -1.0], ["a", "b"], fingers=["thumb", None])
    assert mixed["p_female"] == pytest.approx(1 / (1 + math.exp(-((2.5 - 1.0) / 2) / 1.0)), abs=1e-6)


def test_by_print_count_rises_with_the_prints_given():
    subjects, labels, logits = _weak_subjects()
    from genderclass.training.calibrate import fusion_temperatures

    table = fusion_temperatures(subjects, labels, logits)
    rows = by_print_count(subjects, labels, logits, lambda k: cal.temperature_by_count(k, table, 1.0), 0.5)
    assert [r["prints"] for r in rows] == list(range(1, 11))
    assert rows[0]["n_subjects"] == 300 and rows[0]["n_fused"] == 300 * 20 and rows[-1]["n_fused"] == 300 * 20
    assert rows[-1]["n_subjects"] == 300  # every subject gave all ten prints
    aucs = [r["roc_auc"] for r in rows]
    assert aucs[0] < 0.7 < 0.85 < aucs[-1]  # one print is weak, ten are strong
    assert all(r["ece"] < 0.05 for r in rows[:-1])  # each k calibrated with its own temperature
    one_temperature = by_print_count(subjects, labels, logits, lambda k: table[-1], 0.5)
    assert one_temperature[0]["ece"] > 0.2  # the whole-subject temperature makes one print overconfident


def test_per_subject_metrics_calibrate_each_person_for_their_number_of_items():
    subjects = ["a", "a", "b", "c", "c", "c"]
    labels = np.array([1, 1, 0, 1, 1, 1])
    logits = np.array([2.0, 0.0, -1.0, 3.0, 3.0, 0.0])
    seen = []

    def temperature_of(counts):
        seen.append(counts.tolist())
        return np.where(counts == 1, 1.0, 0.5)

    result = per_subject_metrics(subjects, labels, logits, temperature_of, {"threshold": 0.5, "min_confidence": 0.0})
    assert seen == [[2, 1, 3]] and result["n_subjects"] == 3 and result["n"] == 3
    # a: mean 1.0 / 0.5, b: -1.0 / 1.0, c: 2.0 / 0.5 -> all on the right side of 0.5
    assert result["accuracy"] == 1.0 and result["threshold"] == 0.5 and "ece" in result


def test_a_temperature_at_the_end_of_its_range_is_warned_about(caplog):
    """Perfectly separated validation logits drive the fitted temperature to its bound: the
    probabilities then claim certainty, and export says why."""
    from genderclass.training.calibrate import calibrate

    labels, logits = np.array([0, 0, 1, 1]), np.array([-3.0, -2.0, 2.0, 3.0])
    with caplog.at_level("WARNING"):
        calibration = calibrate(labels, logits, "face")
    assert calibration["temperature"] == pytest.approx(0.05)
    assert "end of its range" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        calibrate(np.array([0, 1, 0, 1, 1, 0]), np.array([-1.0, 0.5, 0.2, 1.0, -0.3, -0.8]), "face")
    assert "end of its range" not in caplog.text


def test_fuse_refuses_fingers_or_sources_that_do_not_match_the_logits(fingerprint_classifier):
    """One finger for three prints would remove the thumb's offset from all three."""
    with pytest.raises(ValueError, match="3 logits, 3 sources, 1 fingers"):
        fingerprint_classifier.fuse([0.1, 0.2, 0.3], ["a", "b", "c"], fingers=["thumb"])
    with pytest.raises(ValueError, match="2 logits, 1 sources"):
        fingerprint_classifier.fuse([0.1, 0.2], ["a"])


def test_fuse_named_fingers_without_any_fusion_table_keeps_the_finger_known_temperature(fingerprint_classifier):
    """A model from data without subjects has no per-count tables: two named prints must not fall
    back to the plain temperature while one named print uses the offset-free one."""
    clf = fingerprint_classifier
    clf.fusion_temperatures = []
    clf.metadata["fusion_temperature"] = None  # none fitted on subjects
    clf.fusion_temperature = 2.0  # the per-print temperature it then falls back to
    offsets = {"thumb": 0.0, "index": 0.0, "middle": 0.0, "ring": 0.0, "little": 0.0}
    clf.finger_known = {"offsets": offsets, "temperature": 1.5, "threshold": 0.5, "min_confidence": 0.0}
    two = clf.fuse([1.0, 2.0], ["a", "b"], fingers=["thumb", "index"])
    assert two["p_female"] == pytest.approx(1 / (1 + math.exp(-1.5 / 1.5)), abs=1e-6)
    plain = clf.fuse([1.0, 2.0], ["a", "b"])  # fingers unknown: the plain fusion temperature
    assert plain["p_female"] == pytest.approx(1 / (1 + math.exp(-1.5 / 2.0)), abs=1e-6)
