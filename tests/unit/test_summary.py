"""``predict --summary``: the share of each label, estimated from calibrated probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genderclass.inference.summary import LabelShares, share_interval


def _result(*faces: tuple[str, float], error: str | None = None) -> dict:
    return {
        "path": "x.jpg",
        "faces": [{"box": [0, 0, 1, 1], "label": label, "p_female": p, "confidence": 0.9} for label, p in faces],
        "error": error,
    }


def test_calibrated_mean_is_unbiased_where_counting_labels_is_not():
    # 1,000 faces, each truly female with its p_female (a calibrated model), but the model's recall
    # differs by class: counting argmax labels misses the share, the mean of p_female does not
    rng = np.random.default_rng(0)
    p = np.concatenate([np.full(600, 0.35), np.full(400, 0.9)])  # share female: 0.6 * 0.35 + 0.4 * 0.9 = 0.57
    truth = rng.random(len(p)) < p
    shares = LabelShares(threshold=0.5)
    for value in p:
        shares.add(_result(("female" if value >= 0.5 else "male", float(value))))
    summary = shares.summary()
    estimate = summary["estimated_share"]["female"]
    assert estimate["estimate"] == pytest.approx(0.57)
    low, high = estimate["ci95"]
    assert low < truth.mean() < high  # the interval covers the realised share
    assert summary["argmax_share"]["female"] == pytest.approx(0.4)  # far from 0.57
    assert summary["estimated_share"]["male"]["estimate"] == pytest.approx(0.43)
    assert summary["estimated_share"]["male"]["ci95"] == pytest.approx([1 - high, 1 - low])


def test_abstentions_are_counted_and_keep_their_argmax_label():
    shares = LabelShares(threshold=0.45, unit="print")
    shares.add(_result(("uncertain", 0.46), ("male", 0.1)))
    shares.add(_result(("uncertain", 0.44)))
    shares.add(_result(error="not an image"))
    summary = shares.summary(resamples=200)
    assert summary["files"] == 3 and summary["files_failed"] == 1
    assert summary["classified"] == 3 and summary["abstained"] == 2
    assert summary["argmax_counts"] == {"male": 2, "female": 1}  # 0.46 >= the threshold 0.45
    assert summary["unit"] == "print" and "prints" in summary["method"]


def test_nothing_classified_gives_no_estimate():
    shares = LabelShares(threshold=0.5)
    shares.add(_result(error="unreadable"))
    summary = shares.summary()
    assert summary["estimated_share"] == {"female": None, "male": None}
    assert summary["argmax_share"] == {"male": None, "female": None}


def test_interval_is_the_spread_of_the_labels_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    values = rng.random(400)
    low, high = share_interval(values, resamples=4000, seed=3)
    # the share of positives is a sum of independent Bernoulli(p_i): its standard deviation is known
    sd = np.sqrt(np.sum(values * (1 - values))) / len(values)
    assert high - low == pytest.approx(2 * 1.96 * sd, rel=0.08)
    assert low < values.mean() < high
    # confident predictions leave little doubt about the share; p = 0.5 for all is a coin flip each
    assert np.subtract(*share_interval(np.full(400, 0.99))[::-1]) < 0.03
    low_half, high_half = share_interval(np.full(400, 0.5), resamples=4000)
    assert high_half - low_half == pytest.approx(2 * 1.96 * 0.5 / 20, rel=0.08)
    assert np.subtract(*share_interval(values[:40])[::-1]) > high - low
    # many distinct values (beyond the exact limit) still give an interval around the mean
    many = rng.random(50_000)
    low, high = share_interval(many)
    assert low < many.mean() < high and high - low < 0.01
    with pytest.raises(ValueError):
        share_interval(np.array([]))


def test_predict_summary_is_the_last_line_and_needs_jsonl(tiny_face_model, write_image, make_colour_image, tmp_path):
    from genderclass.cli.main import main

    photos = tmp_path / "photos"
    for i in range(3):
        write_image(photos / f"{i}.png", make_colour_image(40, 40, (40 * i, 90, 200), seed=i))
    (photos / "broken.png").write_bytes(b"not an image")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["predict", str(photos), "--model", str(tiny_face_model), "--no-detect", "--summary"])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 1  # the broken file
    results, summary = lines[:-1], lines[-1]["summary"]
    assert len(results) == 4 and summary["files"] == 4 and summary["files_failed"] == 1
    p = [face["p_female"] for r in results for face in r["faces"]]
    assert summary["classified"] == 3
    assert summary["estimated_share"]["female"]["estimate"] == pytest.approx(np.mean(p), abs=1e-6)
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["predict", str(photos), "--model", str(tiny_face_model), "--summary", "--format", "csv"])
    assert code == 2


def test_the_interval_covers_the_true_share_of_a_calibrated_collection_at_its_level():
    rng = np.random.default_rng(7)
    covered = 0
    for trial in range(400):
        p = rng.beta(0.6, 0.6, 150)  # a confident, calibrated model: p near 0 and 1
        truth = (rng.random(len(p)) < p).mean()
        low, high = share_interval(p, resamples=400, seed=trial)
        covered += low <= truth <= high
    assert 0.91 * 400 <= covered <= 0.985 * 400  # nominal 95 %: neither too narrow nor too wide
