"""Cross-validation runs (``train --folds K --fold k``) export as one ensemble calibrated on
out-of-fold scores: each validation file is scored by the member that never trained on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from genderclass.evaluation.groups import group_offsets

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fold_runs(tmp_path_factory, fingerprint_csv_dataset, cache_dir, run_cli, train_args) -> list[Path]:
    runs = tmp_path_factory.mktemp("cv")
    outs = []
    for fold in (0, 1):
        out = runs / f"fold{fold}"
        argv = ["train", "--modality", "fingerprint", "--data", fingerprint_csv_dataset["manifest"], "--format", "csv",
                "--out", out, "--epochs", "1", "--test-fraction", "0.2", "--folds", "2", "--fold", fold,
                "--seed", fold, "--split-seed", "0", "--cache-dir", cache_dir, *train_args]  # fmt: skip
        assert run_cli(argv)[0] == 0
        outs.append(out)
    return outs


def _splits(run: Path) -> tuple[list[str], np.ndarray]:
    with (run / "split.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["path"] for r in rows], np.array([r["split"] for r in rows])


def test_folds_share_the_test_split_and_swap_validation(fold_runs):
    paths0, split0 = _splits(fold_runs[0])
    paths1, split1 = _splits(fold_runs[1])
    assert paths0 == paths1
    assert np.array_equal(split0 == "test", split1 == "test") and (split0 == "test").any()
    pool = ~np.isin(split0, ("test", "dropped"))
    assert np.array_equal(split0[pool] == "val", split1[pool] == "train")  # two folds: exact swap
    assert 0 < (split0 == "val").sum() < pool.sum()


def test_fold_ensemble_is_calibrated_out_of_fold(fold_runs, fingerprint_csv_dataset, run_cli, tmp_path):
    code, stdout = run_cli(["export", *fold_runs, "--out", tmp_path / "cv", "--name", "fingerprint"])
    assert code == 0
    meta = json.loads((tmp_path / "cv" / "fingerprint.json").read_text())
    saved = np.load(tmp_path / "cv" / "fingerprint.test_predictions.npz")
    _, split0 = _splits(fold_runs[0])
    pool = np.flatnonzero(~np.isin(split0, ("test", "dropped")))
    cv = meta["training"]["cross_validation"]
    assert cv["members"] == 2 and sum(cv["validation_files_per_member"]) == len(pool)
    assert meta["metrics"]["validation"]["n"] == len(pool)
    assert meta["training"]["split_sizes"]["val"] == len(pool) and meta["training"]["split_sizes"]["train"] == 0
    assert np.array_equal(np.sort(saved["val_index"]), pool)
    # each member alone: its validation scores are the ensemble's out-of-fold scores for those files,
    # and the ensemble's test score is the members' mean
    test_logits, out_of_fold = [], dict(zip(saved["val_index"].tolist(), saved["val_logits"].tolist()))
    for k, run in enumerate(fold_runs):
        assert run_cli(["export", run, "--out", tmp_path / f"m{k}", "--name", "fingerprint"])[0] == 0
        alone = np.load(tmp_path / f"m{k}" / "fingerprint.test_predictions.npz")
        mine = np.array([out_of_fold[i] for i in alone["val_index"].tolist()])
        np.testing.assert_allclose(mine, alone["val_logits"], atol=1e-4)
        test_logits.append(alone["logits"])
    np.testing.assert_allclose(saved["logits"], np.mean(test_logits, axis=0), atol=1e-4)
    # the finger offsets come from the out-of-fold scores (the manifest names every finger)

    rows = {Path(r["path"]).name: r for r in fingerprint_csv_dataset["rows"]}
    paths, _ = _splits(fold_runs[0])
    val_rows = [rows[Path(paths[i]).name] for i in saved["val_index"]]
    expected = group_offsets(
        [r["label"] == "female" for r in val_rows], saved["val_logits"], [r["finger"] for r in val_rows]
    )
    assert meta["finger_known"]["offsets"] == pytest.approx(expected)


def test_one_fold_exports_alone_calibrated_on_every_folds_scores(fold_runs, run_cli, tmp_path):
    """``export RUN --calibrate-with OTHERS``: the file is the one run's network, its calibration is
    fitted on the out-of-fold scores of all the runs, the same scores the ensemble export fits on."""
    assert run_cli(["export", *fold_runs, "--out", tmp_path / "cv", "--name", "fingerprint"])[0] == 0
    assert run_cli(["export", fold_runs[0], "--out", tmp_path / "m0", "--name", "fingerprint"])[0] == 0
    code, stdout = run_cli(["export", fold_runs[0], "--calibrate-with", fold_runs[1], "--out", tmp_path / "one",
                            "--name", "fingerprint"])  # fmt: skip
    assert code == 0, stdout
    ensemble, alone, one = (np.load(tmp_path / d / "fingerprint.test_predictions.npz") for d in ("cv", "m0", "one"))
    np.testing.assert_allclose(one["logits"], alone["logits"], atol=1e-4)  # fold 0's network, not the ensemble
    assert not np.allclose(one["logits"], ensemble["logits"], atol=1e-3)
    assert np.array_equal(one["val_index"], ensemble["val_index"])  # every fold validates
    np.testing.assert_allclose(one["val_logits"], ensemble["val_logits"], atol=1e-4)  # scored out of fold
    meta, cv_meta = (json.loads((tmp_path / d / "fingerprint.json").read_text()) for d in ("one", "cv"))
    for key in ("temperature", "threshold", "fusion_temperatures"):
        assert meta[key] == pytest.approx(cv_meta[key], abs=1e-6)
    info = meta["training"]["cross_validation"]
    assert len(info["calibration_runs"]) == 1 and "--fold 1 " in info["calibration_runs"][0]
    assert "members" not in meta["training"]  # one network is shipped
    # a run of the same fold, or no cross-validation, gives nothing to calibrate out of fold
    assert run_cli(["export", fold_runs[0], "--calibrate-with", fold_runs[0], "--out", tmp_path / "x"])[0] != 0


def test_ensemble_refuses_validation_sets_that_are_not_folds_of_one_split(fold_runs, fingerprint_csv_dataset, cache_dir, run_cli,
                                                        train_args, tmp_path, caplog):  # fmt: skip
    """A plain run of the same split seed shares the test files but its validation set overlaps a
    fold's only in part, and a fold of another K is no fold of this split: both are refused."""
    plain = tmp_path / "plain"
    argv = ["train", "--modality", "fingerprint", "--data", fingerprint_csv_dataset["manifest"], "--format", "csv",
            "--out", plain, "--epochs", "1", "--test-fraction", "0.2", "--val-fraction", "0.3", "--seed", "0",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    code, stdout = run_cli(["export", fold_runs[0], plain, "--out", tmp_path / "mixed"])
    assert code != 0 and stdout == ""
    assert "validation sets differ" in caplog.text
    # folds of another K share the test files, and even a disjoint validation set does not make them folds
    other_k = tmp_path / "other-k"
    argv = ["train", "--modality", "fingerprint", "--data", fingerprint_csv_dataset["manifest"], "--format", "csv",
            "--out", other_k, "--epochs", "1", "--test-fraction", "0.2", "--folds", "3", "--fold", "2",
            "--split-seed", "0", "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    caplog.clear()
    assert run_cli(["export", fold_runs[0], other_k, "--out", tmp_path / "mixed-k"])[0] != 0
    assert "of one --folds K and split seed" in caplog.text
