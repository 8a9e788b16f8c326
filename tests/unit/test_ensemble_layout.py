"""Which runs may export as one ensemble, and how cross-validation folds are scored out-of-fold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from genderclass.training.ensemble import MeanLogit, out_of_fold, validation_layout  # noqa: E402

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
    held_out = validation_layout(runs, PATHS)
    assert held_out.astype(int).tolist() == [[0, 0, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0, 1]]
    # members of one validation split are an ordinary ensemble
    assert validation_layout([runs[0], _run(tmp_path, "same", FOLD0)]) is None


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (dict(splits=["test", "train", "val", "val", "train", "val", "dropped", "val"]), "split differently"),
        (dict(splits=FOLD1, data_hash="other"), "split differently"),
        (dict(splits=FOLD1, paths=[f"q{i}.png" for i in range(8)]), "split differently"),
        (dict(splits=FOLD1, folds=3, fold=1), "of one --folds K and split seed"),  # another K
        (dict(splits=FOLD1, folds=2, fold=0), "folds overlap"),  # claims fold 0 but holds out fold 1
        (dict(splits=FOLD1), "of one --folds K and split seed"),  # a plain run
    ],
)
def test_members_that_are_not_folds_of_one_split_are_refused(tmp_path, other, message):
    runs = [_run(tmp_path, "k0", FOLD0, 2, 0), _run(tmp_path, "other", **other)]
    with pytest.raises(ValueError, match=message):
        validation_layout(runs, PATHS)


def test_several_members_may_hold_out_each_fold_equally_often(tmp_path):
    """Two recipes (or seeds) on the same folds: each file is scored by both networks that held it
    out; a fold held out more often than another would mix scores averaged over unequal numbers."""
    runs = [_run(tmp_path, f"{recipe}{k}", fold, 2, k) for recipe in "ab" for k, fold in enumerate((FOLD0, FOLD1))]
    held_out = validation_layout(runs, PATHS)
    assert held_out.sum(axis=0).tolist() == [0, 0, 2, 2, 2, 2, 0, 2]
    assert np.array_equal(held_out[:2], held_out[2:])
    with pytest.raises(ValueError, match="equally many members"):
        validation_layout(runs[:3], PATHS)


def test_out_of_fold_needs_the_files_the_runs_were_split_on(tmp_path):
    runs = [_run(tmp_path, "k0", FOLD0, 2, 0), _run(tmp_path, "k1", FOLD1, 2, 1)]
    with pytest.raises(ValueError, match="data differs"):
        validation_layout(runs, list(reversed(PATHS)))
    assert np.array_equal(validation_layout(runs), validation_layout(runs, PATHS))


class _Constant(torch.nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.full((len(pixels), 1), self.value)


def test_out_of_fold_scores_average_the_members_that_held_each_file_out():
    ensemble = MeanLogit([_Constant(v) for v in (1.0, 2.0, 3.0, 5.0)], [8, 8, 8, 8])
    held_out = np.array([FOLD0, FOLD1, FOLD0, FOLD1]) == "val"  # members 0, 2 hold out fold 0; 1, 3 fold 1
    images = np.zeros((len(PATHS), 8, 8, 1), dtype=np.uint8)
    logits, split = out_of_fold(ensemble, held_out, images, np.array(FOLD0), batch_size=1)
    assert logits.tolist() == [2.0, 2.0, 3.5, 3.5, 3.5]  # files 2, 3: (1 + 3) / 2; files 4, 5, 7: (2 + 5) / 2
    assert split.tolist() == ["test", "test", "val", "val", "val", "val", "dropped", "val"]
