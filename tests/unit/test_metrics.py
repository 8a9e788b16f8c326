import itertools
import json
import math

import numpy as np
import pytest

from genderclass.calibration import logit
from genderclass.evaluation import metrics as M
from genderclass.evaluation.calibrated import calibrated_metrics
from genderclass.evaluation.fusion import fuse_by_subject
from genderclass.evaluation.groups import age_band, group_metrics


def _assert_plain(obj):
    """Everything json-serialisable with plain Python types only (no numpy scalars)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str
            _assert_plain(v)
    elif isinstance(obj, list):
        for v in obj:
            _assert_plain(v)
    else:
        assert obj is None or type(obj) in (int, float, str, bool), (obj, type(obj))
    json.dumps(obj)


def test_wilson_known_values():
    lo, hi = M.wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=5e-4)
    assert hi == pytest.approx(0.9433, abs=5e-4)
    assert M.wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = M.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=5e-4)
    lo, hi = M.wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=5e-4)
    assert all(type(v) is float for v in M.wilson_interval(3, 7))


def test_binary_metrics_imbalanced():
    # 8 males (one wrongly called female), 2 females (one wrongly called male)
    labels = [0] * 8 + [1, 1]
    p = [0.1] * 7 + [0.9] + [0.8, 0.3]
    m = M.binary_metrics(labels, p)
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["balanced_accuracy"] == pytest.approx((7 / 8 + 1 / 2) / 2)
    assert m["confusion_matrix"] == [[7, 1], [1, 1]]  # [[TN, FP], [FN, TP]]
    assert m["per_class"]["male"] == pytest.approx({"precision": 7 / 8, "recall": 7 / 8, "f1": 7 / 8, "support": 8})
    assert m["per_class"]["female"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["female"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["female"]["support"] == 2
    assert m["accuracy_ci95"] == pytest.approx(list(M.wilson_interval(8, 10)))
    lo_m, hi_m = M.wilson_interval(7, 8)
    lo_f, hi_f = M.wilson_interval(1, 2)
    assert m["balanced_accuracy_ci95"] == pytest.approx([(lo_m + lo_f) / 2, (hi_m + hi_f) / 2])
    assert m["brier"] == pytest.approx(np.mean((np.array(p) - np.array(labels)) ** 2))
    _assert_plain(m)


def test_per_class_precision_is_over_the_predicted_not_the_true_class():
    """The confusion matrix above is symmetric, so precision equals recall there; here it is not."""
    labels = [0] * 8 + [1, 1]
    p = [0.1] * 6 + [0.9, 0.9] + [0.8, 0.7]  # two men called female, both women right: [[6, 2], [0, 2]]
    m = M.binary_metrics(labels, p)
    assert m["confusion_matrix"] == [[6, 2], [0, 2]]
    assert m["per_class"]["male"] == pytest.approx({"precision": 1.0, "recall": 0.75, "f1": 6 / 7, "support": 8})
    assert m["per_class"]["female"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2})


def test_confusion_matrix_layout_and_threshold():
    labels = [0, 0, 1, 1, 1]
    p = [0.2, 0.6, 0.7, 0.4, 0.55]
    assert M.confusion_matrix(labels, p) == [[1, 1], [1, 2]]
    assert M.confusion_matrix(labels, p, threshold=0.65) == [[2, 0], [2, 1]]
    # p == threshold counts as female
    assert M.confusion_matrix([1], [0.5]) == [[0, 0], [0, 1]]


def test_roc_auc_equals_fraction_of_ordered_pairs():
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert M.roc_auc([1, 1], [0.2, 0.3]) is None
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) * 0.5 + 0.3 * y, 1)  # coarse rounding -> many ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = [(a > b) + 0.5 * (a == b) for a, b in itertools.product(pos, neg)]
    assert M.roc_auc(y, s) == pytest.approx(np.mean(pairs))


def test_roc_curve_points():
    fpr, tpr, thr = M.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert np.isinf(thr[0]) and list(thr[1:]) == [0.8, 0.4, 0.35, 0.1]
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        M.roc_curve([1, 1], [0.1, 0.2])


def test_ece_brier_reliability():
    labels = [1, 0, 0, 1]
    p = [0.9, 0.9, 0.1, 0.6]
    # confidences 0.9, 0.9, 0.9, 0.6: top bin acc 2/3 vs conf 0.9, other bin acc 1 vs conf 0.6
    assert M.expected_calibration_error(labels, p, n_bins=5) == pytest.approx((3 * (0.9 - 2 / 3) + 0.4) / 4)
    assert M.brier_score(labels, p) == pytest.approx((0.01 + 0.81 + 0.01 + 0.16) / 4)
    bins = M.reliability_bins(labels, p, n_bins=5)
    assert len(bins) == 5 and bins[0]["lo"] == 0.5 and bins[-1]["hi"] == 1.0
    assert sum(b["count"] for b in bins) == 4
    assert bins[2]["count"] == 0 and bins[2]["accuracy"] is None
    _assert_plain(bins)
    # p == 1.0 lands in the last bin
    assert M.reliability_bins([1], [1.0], n_bins=5)[-1]["count"] == 1


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(123)
    true_logit = rng.normal(0.0, 1.5, 4000)
    labels = (rng.random(4000) < M.sigmoid(true_logit)).astype(int)
    logits = 4.0 * true_logit
    t = M.fit_temperature(logits, labels)
    assert 3.0 < t < 5.0
    p_raw, p_cal = M.sigmoid(logits), M.apply_temperature(logits, t)
    assert M.expected_calibration_error(labels, p_cal) < M.expected_calibration_error(labels, p_raw) / 2
    assert M.log_loss(labels, p_cal) < M.log_loss(labels, p_raw)
    # an already calibrated set stays near T = 1
    assert M.fit_temperature(true_logit, labels) == pytest.approx(1.0, abs=0.15)
    np.testing.assert_allclose(M.apply_temperature([0.0, 2.0], 2.0), M.sigmoid([0.0, 1.0]))
    with pytest.raises(ValueError):
        M.apply_temperature([1.0], 0.0)


def test_choose_threshold_when_half_is_wrong():
    labels = [0, 0, 0, 1, 1, 1]
    p = [0.6, 0.65, 0.7, 0.8, 0.85, 0.9]  # everything >= 0.5: threshold 0.5 gives balanced acc 0.5
    t = M.choose_threshold(labels, p)
    assert t == pytest.approx(0.75)
    assert M.binary_metrics(labels, p, t)["balanced_accuracy"] == 1.0
    # perfectly separated around 0.5: the best cut (0.3, 0.7] holds 0.5, which represents it exactly
    assert M.choose_threshold([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9]) == 0.5
    # low scores: optimum below 0.5
    t = M.choose_threshold([0, 0, 1, 1], [0.05, 0.1, 0.2, 0.3])
    assert 0.1 < t <= 0.2
    assert M.choose_threshold([1, 1], [0.2, 0.9]) == 0.5


def test_choose_threshold_breaks_real_ties_towards_one_half():
    # no skill: every cut has balanced accuracy 0.5, and 0.5 is one of them
    assert M.choose_threshold([0, 1, 0, 1], [0.2, 0.2, 0.8, 0.8]) == 0.5
    # two best cuts (>= 0.2 and >= 0.4, both 0.75): the one whose midpoint 0.35 is nearer 0.5, not 0.15
    assert M.choose_threshold([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.35)


def test_coverage_curve_monotone():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    p = np.clip(labels * 0.4 + rng.random(300) * 0.6, 0.015, 0.985)
    curve = M.coverage_curve(labels, p)
    _assert_plain(curve)
    assert curve[0]["min_confidence"] == 0.5 and curve[0]["coverage"] == 1.0
    cov = [c["coverage"] for c in curve]
    assert all(a >= b for a, b in itertools.pairwise(cov))
    assert all(c["n"] == round(c["coverage"] * 300) for c in curve)
    assert curve[0]["accuracy"] == pytest.approx(M.binary_metrics(labels, p)["accuracy"])
    assert curve[-1]["min_confidence"] == 0.99 and curve[-1]["n"] == 0 and curve[-1]["accuracy"] is None
    custom = M.coverage_curve([1, 0], [0.9, 0.6], min_confidences=[0.8, 0.5])
    assert [c["min_confidence"] for c in custom] == [0.5, 0.8]
    assert custom[0]["accuracy"] == 0.5 and custom[1] == {
        "min_confidence": 0.8,
        "coverage": 0.5,
        "accuracy": 1.0,
        "balanced_accuracy": None,  # the only man was abstained on
        "n": 1,
    }


def test_coverage_and_abstention_report_balanced_accuracy_for_imbalanced_sets():
    """Eight men right and two women wrong: 80 % accuracy is only 50 % balanced accuracy."""
    labels = [0] * 8 + [1] * 2
    p = [0.1] * 8 + [0.3, 0.45]  # confidences 0.9 and 0.7, 0.55 for the wrong women
    curve = M.coverage_curve(labels, p, min_confidences=[0.5, 0.6])
    assert [(c["accuracy"], c["balanced_accuracy"]) for c in curve] == [(0.8, 0.5), (8 / 9, 0.5)]
    result = calibrated_metrics(labels, logit(p), temperature=1.0, threshold=0.5, min_confidence=0.6)
    assert result["accuracy_at_threshold"] == pytest.approx(8 / 9)
    assert result["balanced_accuracy_at_threshold"] == pytest.approx(0.5)
    assert result["coverage_at_threshold_by_class"] == {"male": 1.0, "female": 0.5}
    everyone_abstains = calibrated_metrics(labels, logit(p), temperature=1.0, threshold=0.5, min_confidence=1.0)
    assert everyone_abstains["balanced_accuracy_at_threshold"] is None
    # every woman abstained on: the answered men are all right, but no balanced accuracy can be measured
    no_women = calibrated_metrics(labels, logit(p), temperature=1.0, threshold=0.5, min_confidence=0.8)
    assert no_women["accuracy_at_threshold"] == 1.0 and no_women["balanced_accuracy_at_threshold"] is None
    assert no_women["coverage_at_threshold_by_class"] == {"male": 1.0, "female": 0.0}
    assert M.coverage_curve(labels, p, min_confidences=[0.8])[0]["balanced_accuracy"] is None


def test_calibrated_metrics_abstain_on_the_threshold_centred_confidence():
    """A fingerprint model's threshold is not 0.5: coverage must use the confidence the classifier
    reports (centred on the threshold), and the uncalibrated ECE the raw logits."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    logits = 3.0 * (labels - 0.7) + rng.normal(0, 1.5, 400)
    threshold, min_confidence, temperature = 0.3, 0.7, 2.0
    result = calibrated_metrics(labels, logits, temperature, threshold, min_confidence)
    p = M.sigmoid(logits / temperature)
    covered = M.confidence(p, threshold) >= min_confidence
    assert covered.mean() != pytest.approx((M.confidence(p) >= min_confidence).mean())  # the check can tell
    assert result["coverage_at_threshold"] == pytest.approx(covered.mean())
    assert result["accuracy_at_threshold"] == pytest.approx((M.predict(p, threshold) == labels)[covered].mean())
    assert result["coverage_curve"] == M.coverage_curve(labels, p, threshold)
    assert result["ece_uncalibrated"] == pytest.approx(M.expected_calibration_error(labels, M.sigmoid(logits)))
    assert result["ece_uncalibrated"] != pytest.approx(result["ece"])


def test_choose_min_confidence():
    labels = [1, 1, 0, 0, 1, 0, 0, 1, 1, 0]
    p = [0.95, 0.9, 0.05, 0.1, 0.85, 0.2, 0.625, 0.375, 0.75, 0.25]  # both errors have confidence 0.625
    assert M.choose_min_confidence(labels, p, min_coverage=0.8) == 0.75
    # 80% coverage not allowed -> only full coverage qualifies
    assert M.choose_min_confidence(labels, p, min_coverage=0.9) == 0.5
    # halving the error is impossible at >= 80% coverage: best accuracy there instead
    labels = [0] * 4 + [1] * 6
    p = [0.625, 0.75, 0.75, 0.75] + [0.875] * 6  # 4 errors; confidence-0.875 items are all right
    assert M.choose_min_confidence(labels, p, min_coverage=0.8) == 0.75
    assert M.choose_min_confidence(labels, p, min_coverage=0.5) == 0.875
    assert M.choose_min_confidence([0, 1], [0.2, 0.9]) == 0.5


def test_a_confidence_equal_to_the_cut_off_is_answered():
    """Predictions answer when confidence >= min_confidence (below it: uncertain), as the classifier does."""
    curve = M.coverage_curve([1, 0], [0.75, 0.25], min_confidences=[0.75])
    assert (curve[0]["n"], curve[0]["coverage"]) == (2, 1.0)
    logits = np.array([1.2, -0.4])
    at_first = float(M.confidence(M.sigmoid(logits / 2.0), 0.4)[0])  # exactly the first item's confidence
    result = calibrated_metrics([1, 0], logits, temperature=2.0, threshold=0.4, min_confidence=at_first)
    assert result["coverage_at_threshold_by_class"] == {"male": 0.0, "female": 1.0}


def test_choose_min_confidence_accepts_exactly_half_the_error():
    """ "At most half the full-coverage error rate": exactly half qualifies, so the smaller cut-off wins."""
    labels = [0] * 20
    p = [0.4] * 7 + [0.6] * 3 + [0.1, 0.9] + [0.05] * 8  # confidences 0.6 (3 wrong), 0.9 (1 wrong), 0.95
    # all: 4 of 20 wrong; from 0.9: 1 of 10 wrong, half the error rate; from 0.95: none wrong
    assert M.choose_min_confidence(labels, p, min_coverage=0.4) == 0.9


def test_most_confident_errors_rank_on_the_threshold_centred_confidence():
    labels = [0, 0, 1]
    p = [0.45, 0.9, 0.25]  # all wrong at threshold 0.3
    # centred on 0.3, the man at 0.45 (0.66) is further past it than the woman at 0.25 (0.56);
    # centred on 0.5 it would be the other way round (0.55 against 0.75)
    assert M.most_confident_errors(labels, p, 0.3, 10) == [1, 0, 2]


def test_most_confident_errors():
    labels = [0, 1, 0, 1, 1]
    p = [0.9, 0.2, 0.6, 0.95, 0.5]
    assert M.most_confident_errors(labels, p, 0.5, 10) == [0, 1, 2]
    assert M.most_confident_errors(labels, p, 0.5, 2) == [0, 1]
    assert M.most_confident_errors([1], [0.9], 0.5, 5) == []


def test_age_band():
    assert age_band(0) == "0-2"
    assert age_band("2") == "0-2"
    assert age_band(2.9) == "0-2"
    assert age_band("3") == "3-9"
    assert age_band(19) == "10-19"
    assert age_band("25") == "20-29"
    assert age_band(45) == "40-59"
    assert age_band(60) == "60+"
    assert age_band(116) == "60+"
    assert age_band(500) == "60+"
    assert age_band("30-39") == "30-39"
    for bad in ("x", -1, "nan"):
        with pytest.raises(ValueError):
            age_band(bad)


def test_group_metrics_three_groups():
    labels = [0, 1, 1, 0, 0, 1, 0, 1]
    p = [0.2, 0.7, 0.4, 0.6, 0.1, 0.9, 0.9, 0.9]
    race = ["a", "a", "a", "b", "b", "c", None, ""]
    g = group_metrics(labels, p, {"race": race}, summary_min_n=1)
    _assert_plain(g)
    assert list(g) == ["race", "race_x_gender"]
    r = g["race"]
    assert list(r) == ["a", "b", "c", "_summary"]
    assert r["a"]["n"] == 3 and r["a"]["accuracy"] == pytest.approx(2 / 3)
    assert r["a"]["ci95"] == pytest.approx(list(M.wilson_interval(2, 3)))
    assert r["a"]["recall"] == {"male": 1.0, "female": 0.5}
    assert r["a"]["balanced_accuracy"] == pytest.approx(0.75)
    assert r["b"]["recall"] == {"male": 0.5, "female": None}
    assert r["b"]["recall_ci95"]["female"] is None
    assert r["b"]["balanced_accuracy"] == 0.5
    assert r["c"]["accuracy"] == 1.0
    assert r["_summary"]["worst_group"] == "b"
    assert r["_summary"]["worst_accuracy"] == 0.5
    assert r["_summary"]["largest_gap"] == pytest.approx(0.5)
    x = g["race_x_gender"]
    assert list(x) == ["a/male", "a/female", "b/male", "c/female", "_summary"]
    assert x["a/female"]["n"] == 2 and x["a/female"]["accuracy"] == 0.5
    assert x["b/male"]["accuracy"] == 0.5
    # default summary threshold (n >= 30): groups are reported but none is summarised
    g30 = group_metrics(labels, p, {"race": race})
    assert g30["race"]["a"]["n"] == 3 and g30["race"]["_summary"]["worst_group"] is None
    g2 = group_metrics(labels, p, {"race": race}, summary_min_n=2)
    assert g2["race"]["_summary"]["worst_group"] == "b"
    assert g2["race"]["_summary"]["largest_gap"] == pytest.approx(2 / 3 - 1 / 2)
    # min_n drops small groups from the output
    assert list(group_metrics(labels, p, {"race": race}, min_n=2)["race"]) == ["a", "b", "_summary"]


def test_group_metrics_age_bands_ordered():
    labels = [0, 1, 0, 1, 0]
    p = [0.2, 0.8, 0.7, 0.6, 0.3]
    ages = ["1", "25", "15", "70", None]
    g = group_metrics(labels, p, {"age": ages})
    assert [k for k in g["age"] if k != "_summary"] == ["0-2", "10-19", "20-29", "60+"]
    assert g["age"]["10-19"]["accuracy"] == 0.0
    assert "0-2/male" in g["age_x_gender"]
    with pytest.raises(ValueError):
        group_metrics(labels, p, {"age": ["1"]})


def test_fuse_by_subject():
    subjects = ["s2", "s1", "s2", "s1", "s3"]
    labels = [1, 0, 1, 0, 0]
    logits = [1.0, -2.0, 3.0, 0.0, -1.0]
    ids, y, z = fuse_by_subject(subjects, labels, logits)
    assert ids == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(y, [0, 1, 0])
    np.testing.assert_allclose(z, [-1.0, 2.0, -1.0])
    _, _, zp = fuse_by_subject(subjects, labels, logits, how="mean_prob")
    expected = (M.sigmoid(-2.0) + 0.5) / 2
    assert zp[0] == pytest.approx(math.log(expected / (1 - expected)))
    with pytest.raises(ValueError):
        fuse_by_subject(["a", "a"], [0, 1], [0.0, 0.0])
    # probabilities that round to 0 or 1 still give a finite fused logit
    _, _, saturated = fuse_by_subject(["a", "a", "b"], [1, 1, 0], [50.0, 60.0, -800.0], how="mean_prob")
    assert np.isfinite(saturated).all() and saturated[0] > 10 and saturated[1] < -10
    np.testing.assert_allclose(logit(M.sigmoid(np.array([-3.0, 0.0, 2.5]))), [-3.0, 0.0, 2.5], atol=1e-9)


def test_input_validation():
    with pytest.raises(ValueError):
        M.binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        M.binary_metrics([0, 1], [0.1])
    with pytest.raises(ValueError):
        M.binary_metrics([0, 1], [0.1, 1.2])


def test_confidence_is_one_half_at_the_threshold():
    p = np.array([0.0, 0.1, 0.3616, 0.38, 0.5, 0.9, 1.0])
    np.testing.assert_array_equal(M.confidence(p), np.maximum(p, 1 - p))  # threshold 0.5: max(p, 1 - p)
    conf = M.confidence(p, threshold=0.3616)
    assert conf[2] == pytest.approx(0.5) and (conf >= 0.5).all() and (conf <= 1.0).all()
    # a print called female at p = 0.38 is barely past the threshold: just over one half, never below
    assert 0.5 < conf[3] < 0.53 and conf[0] == 1.0 and conf[-1] == 1.0
    # monotone away from the threshold on both sides
    grid = np.linspace(0, 1, 101)
    c = M.confidence(grid, 0.3616)
    below, above = grid < 0.3616, grid >= 0.3616
    assert (np.diff(c[below]) <= 0).all() and (np.diff(c[above]) >= 0).all()
    # scalars, and the extreme thresholds (everything female at 0, everything male at 1)
    assert float(M.confidence(0.38, 0.3616)) == pytest.approx(conf[3])
    assert M.confidence(grid, 0.0)[1:].tolist() == [1.0] * 100 and M.confidence(0.0, 0.0) == 0.5
    assert M.confidence(grid, 1.0)[:-1].tolist() == [1.0] * 100 and M.confidence(1.0, 1.0) == 0.5


def test_attribute_groups_leave_out_id_like_columns_but_keep_ages():
    from genderclass.evaluation.groups import attribute_groups

    attrs = [{"id": str(i), "age": str(i), "side": "lr"[i % 2], "alteration": "cr"} for i in range(60)]
    groups = attribute_groups(attrs, skip=("alteration",))
    assert set(groups) == {"age", "side"} and groups["side"][:2] == ["l", "r"]
    assert set(attribute_groups(attrs[:50])) == {"age", "id", "side", "alteration"}  # 50 values: still a grouping
