"""The checks that keep a trained run's held-out files unseen: the data must still split as the
run's ``split.csv`` says, and a model to start from (or learn from) must not have trained on, or
been selected on, files this run holds out."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from genderclass.data.leaks import check_sources_held_out
from genderclass.data.prepare import check_split_unchanged
from genderclass.data.split import SplitResult, write_split_csv

PATHS = ["a.png", "b.png", "c.png", "d.png"]
LABELS = [0, 1, 0, 1]


def _split(names: list[str]) -> SplitResult:
    return SplitResult(split=np.array(names), groups=np.arange(len(names)), n_conflicting_groups=0, n_dropped=0)


def _data(names: list[str], data_hash: str = "h1") -> SimpleNamespace:
    cache = SimpleNamespace(paths=np.array(PATHS), labels=np.array(LABELS), data_hash=lambda: data_hash)
    return SimpleNamespace(cache=cache, split=_split(names), source="data", listed_test=None)


def _run(tmp_path, names: list[str], data_hash: str = "h1"):
    run = tmp_path / "run"
    write_split_csv(run / "split.csv", PATHS, LABELS, _split(names))
    (run / "config.json").write_text(json.dumps({"data": {"data_hash": data_hash}}))
    return run


def test_data_that_splits_as_in_training_is_accepted(tmp_path):
    names = ["train", "train", "val", "test"]
    check_split_unchanged(_run(tmp_path, names), _data(names))


def test_a_file_that_moved_to_another_split_is_refused(tmp_path):
    run = _run(tmp_path, ["train", "train", "val", "test"])
    with pytest.raises(ValueError, match="1 files split differently; e.g. b.png: train then, test now"):
        check_split_unchanged(run, _data(["train", "test", "val", "test"]))


def test_the_same_files_with_other_content_are_refused(tmp_path):
    """Same paths, same splits, but other bytes or labels (the data hash differs): refused too."""
    names = ["train", "train", "val", "test"]
    with pytest.raises(ValueError, match="same files with other content"):
        check_split_unchanged(_run(tmp_path, names, data_hash="h1"), _data(names, data_hash="h2"))


def _source(tmp_path, names: list[str]) -> SimpleNamespace:
    checkpoint = _run(tmp_path, names) / "checkpoints" / "best.ckpt"
    return SimpleNamespace(init_from=str(checkpoint), teacher=None)


@pytest.mark.parametrize(
    ("theirs", "ours", "refused"),
    [
        (["train", "train", "val", "test"], ["train", "train", "val", "test"], False),  # the same split
        (["train", "val", "val", "test"], ["train", "train", "val", "test"], False),  # their val, our train: fine
        (["train", "train", "val", "test"], ["train", "val", "val", "test"], True),  # trained on our val
        (["train", "train", "val", "test"], ["train", "train", "test", "val"], True),  # selected on our test
    ],
    ids=["same split", "their validation is our training", "trained on our validation", "selected on our test"],
)
def test_a_source_that_saw_held_out_files_is_refused(tmp_path, monkeypatch, theirs, ours, refused):
    monkeypatch.chdir(tmp_path)  # split.csv paths are read from the working directory
    cfg = _source(tmp_path, theirs)
    if refused:
        with pytest.raises(ValueError, match="holds out for validation or test"):
            check_sources_held_out(cfg, _data(ours))
    else:
        check_sources_held_out(cfg, _data(ours))
