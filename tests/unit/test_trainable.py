"""``check_trainable``: data that cannot train a meaningful model is refused before training, with
the setting to change; under cross-validation that is --folds, not --val-fraction (unused then)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from genderclass.config import TrainConfig
from genderclass.data.leaks import check_trainable
from genderclass.data.prepare import PreparedData
from genderclass.data.split import split_groups


def _data(subject_labels: list[int], per_subject: int, folds: int, fold: int) -> PreparedData:
    labels = np.repeat(subject_labels, per_subject)
    groups = np.repeat(np.arange(len(subject_labels)), per_subject)
    split = split_groups(labels, groups, 0.1, 0.15, seed=0, folds=folds, fold=fold)
    return PreparedData(cache=SimpleNamespace(labels=labels), split=split)


def test_a_fold_left_empty_by_too_few_groups_names_folds():
    """3 men and 3 women outside test, dealt into 5 folds per label: folds 3 and 4 get nobody."""
    cfg = TrainConfig(folds=5, fold=4, batch_size=4)
    with pytest.raises(ValueError, match="validation") as refused:
        check_trainable(cfg, _data([0, 1] * 4, 8, folds=5, fold=4))
    message = str(refused.value)
    assert "fold 4 of --folds 5" in message and "3 male and 3 female" in message and "lower --folds" in message
    assert "--val-fraction" not in message


def test_a_fold_without_one_label_names_folds():
    """3 men and 2 women outside test in 3 folds: the third fold holds men only."""
    cfg = TrainConfig(folds=3, fold=2, batch_size=4)
    with pytest.raises(ValueError, match="has no female images") as refused:
        check_trainable(cfg, _data([0, 1, 0, 1, 0, 1, 0], 8, folds=3, fold=2))
    assert "lower --folds" in str(refused.value)


def test_without_folds_an_empty_validation_split_still_names_val_fraction():
    cfg = TrainConfig(batch_size=4, val_fraction=0.0)
    data = _data([0, 1] * 4, 8, folds=0, fold=0)
    data.split = split_groups(data.cache.labels, data.split.groups, 0.0, 0.15, seed=0)
    with pytest.raises(ValueError, match=r"validation split is empty .*raise --val-fraction"):
        check_trainable(cfg, data)


def test_a_split_without_one_label_says_how_few_the_data_holds():
    """40 men and 2 women (one person each): the split puts no woman in training, and the message
    says the data holds only 2, the real problem (not how the split fell)."""
    labels = np.array([0] * 40 + [1] * 2)
    split = split_groups(labels, np.arange(42), 0.1, 0.15, seed=0)
    data = PreparedData(cache=SimpleNamespace(labels=labels), split=split)
    with pytest.raises(ValueError, match="has no female images") as refused:
        check_trainable(TrainConfig(batch_size=4), data)
    assert "the data holds 2 female in all" in str(refused.value)
