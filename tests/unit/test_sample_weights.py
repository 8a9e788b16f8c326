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


def _faces(rows: list[tuple[int, str, str]]) -> SimpleNamespace:
    """(label, age, race) per image; "" where the data names none."""
    data = _data([label for label, _, _ in rows])
    data.cache.attrs = [{k: v for k, v in (("age", age), ("race", race)) if v} for _, age, race in rows]
    return data


def test_groups_of_several_attributes_balance_each_cell_and_count_ages_in_bands():
    rows = [(1, "65", "white")] * 2 + [(1, "70", "white")] * 2 + [(1, "30", "white")] * 12 + [(0, "33", "asian")] * 8
    rows += [(1, "", "")] * 6  # no age or race (a CSV source without them): a cell of its own
    weights = _sample_weights(TrainConfig(balance="group", balance_by="age,race"), _faces(rows))
    cells = {"women 60+": slice(0, 4), "women 30s": slice(4, 16), "men 30s": slice(16, 24), "unnamed": slice(24, 30)}
    totals = {name: weights[cell].sum() for name, cell in cells.items()}
    assert totals == pytest.approx(dict.fromkeys(cells, 1.0))  # 65 and 70: one band
    partial = _sample_weights(TrainConfig(balance="group", balance_by="age,race", balance_power=0.5), _faces(rows))
    assert partial[0] == pytest.approx(4**-0.5) and partial[4] == pytest.approx(12**-0.5)  # rare cells gain, less


def test_balance_by_needs_group_balance_and_power_is_bounded():
    with pytest.raises(ValueError, match="--balance-by names the groups of --balance group"):
        TrainConfig(balance="class", balance_by="age")
    for power in (0, 1.5):
        with pytest.raises(ValueError, match="balance_power must be in"):
            TrainConfig(balance="class", balance_power=power)
