"""Which training images are drawn how often (``train --balance``), and the hint when unweighted
training meets a lopsided class count."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch")

from genderclass.config import TrainConfig  # noqa: E402
from genderclass.training.run import _sample_weights  # noqa: E402


def _data(labels: list[int]) -> SimpleNamespace:
    cache = SimpleNamespace(labels=np.array(labels), attrs=[{} for _ in labels])
    return SimpleNamespace(cache=cache, indices=lambda split: np.arange(len(labels)))


def test_unweighted_training_on_lopsided_classes_hints_at_balance(caplog):
    with caplog.at_level(logging.WARNING, logger="genderclass"):
        assert _sample_weights(TrainConfig(balance="none"), _data([0] * 150 + [1] * 60)) is None
    [hint] = [r.getMessage() for r in caplog.records]
    assert "150 male and 60 female" in hint and "--balance class" in hint


@pytest.mark.parametrize(("labels", "balance"), [([0] * 100 + [1] * 60, "none"), ([0] * 150 + [1] * 60, "class")])
def test_no_hint_for_even_enough_or_balanced_training(caplog, labels, balance):
    with caplog.at_level(logging.WARNING, logger="genderclass"):
        weights = _sample_weights(TrainConfig(balance=balance), _data(labels))
    assert not caplog.records
    if balance == "class":  # each class drawn with the same total weight
        labels = np.array(labels)
        assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())
