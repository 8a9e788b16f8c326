"""Which runs may export as one ensemble, and how cross-validation folds are scored out-of-fold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from genderclass.training.export import validation_layout  # noqa: E402

PATHS = [f"p{i}.png" for i in range(8)]


def _run(root: Path, name: str, splits: list[str], folds: int = 0, fold: int = 0, data_hash: str = "h",
         paths: list[str] = PATHS) -> Path:  # fmt: skip
    run = root / name
    run.mkdir()
    train = {"folds": folds, "fold": fold, "seed": fold, "split_seed": 0}
    (run / "config.json").write_text(json.dumps({"train": train, "data": {"data_hash": data_hash}}))
    rows = ["path,label,group,split", *(f"{p},0,{i},{s}" for i, (p, s) in enumerate(zip(paths, splits)))]
    (run / "split.csv").write_text("\n".join(rows) + "\n")
    return run


FOLD0 = ["test", "test", "val", "val", "train", "train", "dropped", "train"]
FOLD1 = ["test", "test", "train", "train", "val", "val", "dropped", "val"]


def test_folds_are_scored_by_the_member_that_held_them_out(tmp_path):
    runs = [_run(tmp_path, "k0", FOLD0, 2, 0), _run(tmp_path, "k1", FOLD1, 2, 1)]
    holder = validation_layout(runs, PATHS)
    assert holder.tolist() == [-1, -1, 0, 0, 1, 1, -1, 1]
    # members of one validation split are an ordinary ensemble
    assert validation_layout([runs[0], _run(tmp_path, "same", FOLD0)]) is None


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (dict(splits=["test", "train", "val", "val", "train", "val", "dropped", "val"]), "split differently"),
        (dict(splits=FOLD1, data_hash="other"), "split differently"),
        (dict(splits=FOLD1, paths=[f"q{i}.png" for i in range(8)]), "split differently"),
        (dict(splits=FOLD1, folds=3, fold=1), "distinct --fold values"),  # another K
        (dict(splits=FOLD1, folds=2, fold=0), "distinct --fold values"),  # the same fold twice
        (dict(splits=FOLD1), "distinct --fold values"),  # a plain run
    ],
)
def test_members_that_are_not_folds_of_one_split_are_refused(tmp_path, other, message):
    runs = [_run(tmp_path, "k0", FOLD0, 2, 0), _run(tmp_path, "other", **other)]
    with pytest.raises(ValueError, match=message):
        validation_layout(runs, PATHS)


def test_out_of_fold_needs_the_files_the_runs_were_split_on(tmp_path):
    runs = [_run(tmp_path, "k0", FOLD0, 2, 0), _run(tmp_path, "k1", FOLD1, 2, 1)]
    with pytest.raises(ValueError, match="data differs"):
        validation_layout(runs, list(reversed(PATHS)))
    assert np.array_equal(validation_layout(runs), validation_layout(runs, PATHS))
