"""``--init-from`` / ``--teacher``: a model that trained on files this run holds out is refused."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args):
    """A 1-epoch run on split seed 0, without folds: what a second stage would start from."""
    out = tmp_path_factory.mktemp("runs") / "source"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    return out / "checkpoints" / "best.ckpt"


@pytest.mark.parametrize("flag", ["--init-from", "--teacher"])
@pytest.mark.parametrize(
    "split",
    [["--split-seed", "1"], ["--folds", "3", "--fold", "0"]],
    ids=["other split seed", "folds of a model trained without them"],
)
def test_a_source_that_saw_held_out_files_is_refused(
    source_run, face_folder_dataset, cache_dir, run_cli, train_args, tmp_path, caplog, flag, split
):
    out = tmp_path / "stage2"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, flag, source_run, *split, *train_args]  # fmt: skip
    code, stdout = run_cli(argv)
    assert (code, stdout) == (2, "")
    assert "holds out for validation or test" in caplog.text
    assert not out.exists()


def test_a_source_on_the_same_split_is_accepted(
    source_run, face_folder_dataset, cache_dir, run_cli, train_args, tmp_path
):
    out = tmp_path / "stage2"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, "--init-from", source_run, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
