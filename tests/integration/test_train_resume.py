"""``genderclass train --resume``: an interrupted run continues from last.ckpt."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow


def _epochs_logged(run: Path) -> set[int]:
    with (run / "metrics.csv").open(newline="") as handle:
        return {int(r["epoch"]) for r in csv.DictReader(handle) if r.get("val_bal_acc")}


def _checkpoint(run: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args) -> dict:
    """A run configured for 2 epochs that stopped after its first; then ``--resume``.

    The interruption is simulated by training 1 epoch and then setting the saved config to 2 epochs,
    which is what the run folder of a 2-epoch run killed after epoch 1 contains.
    """
    out = tmp_path_factory.mktemp("runs") / "interrupted"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    before = {"epochs": _epochs_logged(out), "ckpt": _checkpoint(out)}
    config = json.loads((out / "config.json").read_text())
    config["train"]["epochs"] = 2
    (out / "config.json").write_text(json.dumps(config))
    code, stdout = run_cli(["train", "--out", out, "--resume"])
    assert code == 0
    return {"out": out, "before": before, "stdout": stdout}


def test_resume_continues_from_last_checkpoint(interrupted_then_resumed):
    out, before = interrupted_then_resumed["out"], interrupted_then_resumed["before"]
    assert before["epochs"] == {0}
    steps_per_epoch = before["ckpt"]["global_step"]
    assert steps_per_epoch > 0
    # exactly one more epoch of optimiser steps: the run continued, it did not start over
    assert _checkpoint(out)["global_step"] == 2 * steps_per_epoch
    assert 1 in _epochs_logged(out)
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 2  # the saved config was used
    assert json.loads(interrupted_then_resumed["stdout"])["model"] == str(out / "export" / "face.onnx")
    assert (out / "export" / "face.onnx").is_file()


def test_resume_keeps_the_metrics_history(interrupted_then_resumed):
    """metrics.csv must still hold the epochs trained before the interruption (training curves)."""
    assert _epochs_logged(interrupted_then_resumed["out"]) == {0, 1}


@pytest.mark.parametrize(
    "flag", [["--split-seed", "3"], ["--lr", "0.1"], ["--input-size", "40"], ["--modality", "fingerprint"]]
)
def test_resume_refuses_flags_that_change_the_run(interrupted_then_resumed, run_cli, flag, caplog):
    """A flag that would change the data, split or recipe is refused, not silently ignored."""
    out = interrupted_then_resumed["out"]
    saved = (out / "config.json").read_bytes()
    code, stdout = run_cli(["train", "--out", out, "--resume", *flag])
    assert code != 0 and stdout == "" and "cannot change" in caplog.text
    assert (out / "config.json").read_bytes() == saved


def test_resume_with_more_epochs(tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args, recwarn):
    """``--resume --epochs 2`` on a finished 1-epoch run trains one more epoch (the flag is not ignored),
    without Lightning's alarming warnings about a run of few steps or its existing checkpoints."""
    out = tmp_path_factory.mktemp("runs") / "extend"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    steps_per_epoch = _checkpoint(out)["global_step"]
    assert run_cli(["train", "--out", out, "--resume", "--epochs", "2"])[0] == 0
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 2
    # the model's provenance says how it was trained in the end, not what the first attempt was told
    assert json.loads((out / "export" / "face.json").read_text())["training"]["config"]["epochs"] == 2
    assert _checkpoint(out)["global_step"] == 2 * steps_per_epoch
    assert 1 in _epochs_logged(out)
    alarming = ("logging interval", "exists and is not empty")
    assert not [str(w.message) for w in recwarn if any(text in str(w.message) for text in alarming)]


def test_resume_before_the_first_saved_epoch_still_starts_from_init_from(
    tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args, caplog
):
    """A fine-tuning run killed during its first epoch has a config but no checkpoint: --resume
    starts it again from the --init-from weights, not from random ones."""
    root = tmp_path_factory.mktemp("runs")
    base = ["train", "--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir,
            *train_args]  # fmt: skip
    assert run_cli([*base, "--out", root / "stage1"])[0] == 0
    init = root / "stage1" / "checkpoints" / "best.ckpt"
    assert run_cli([*base, "--out", root / "stage2", "--init-from", init])[0] == 0
    for checkpoint in (root / "stage2" / "checkpoints").iterdir():  # as if killed before epoch 0 ended
        checkpoint.unlink()
    caplog.clear()
    assert run_cli(["train", "--out", root / "stage2", "--resume"])[0] == 0
    assert "no saved epoch" in caplog.text
    assert f"initialised weights from {init}" in caplog.text


def test_a_moved_run_resumes_where_it_is_now(tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args):
    """A run folder renamed between attempts: the resumed attempt records its new place and keeps
    the best score (a forgotten score would let a worse epoch overwrite best.ckpt)."""
    root = tmp_path_factory.mktemp("runs")
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", root / "first", "--epochs", "1",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    best_before = _best_state(_checkpoint(root / "first"))["best_model_score"]
    out = (root / "first").rename(root / "moved")
    assert run_cli(["train", "--out", out, "--resume", "--epochs", "2"])[0] == 0
    assert json.loads((out / "config.json").read_text())["train"]["out"] == str(out)
    state = _best_state(_checkpoint(out))
    assert state["dirpath"] == str((out / "checkpoints").resolve())
    assert all(Path(p).parent == out.resolve() / "checkpoints" for p in state["best_k_models"])
    scores = [float(r["val_bal_acc"]) for r in csv.DictReader((out / "metrics.csv").open()) if r.get("val_bal_acc")]
    assert len(scores) == 2 and float(state["best_model_score"]) == pytest.approx(max(scores))
    assert float(state["best_model_score"]) >= float(best_before)


def _best_state(ckpt: dict) -> dict:
    """The state of the checkpoint callback that tracks the best epoch (the one with a monitor)."""
    return next(v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint") and v.get("monitor"))


def test_ema_weights_are_checkpointed_exported_and_resumed(
    tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args
):
    """``--ema-decay``: checkpoints hold the averaged weights (validated and exported) and the raw
    ones; a resumed run keeps averaging from where it stopped."""
    out = tmp_path_factory.mktemp("runs") / "ema"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "2",
            "--ema-decay", "0.9", "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    assert json.loads((out / "config.json").read_text())["train"]["ema_decay"] == 0.9
    ckpt = _checkpoint(out)
    averaged, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert averaged.keys() == raw.keys()
    weights = [k for k in averaged if k.endswith("weight") and averaged[k].is_floating_point()]
    assert any(not torch.equal(averaged[k], raw[k]) for k in weights)  # an average, not a copy
    assert run_cli(["train", "--out", out, "--resume", "--epochs", "3"])[0] == 0
    resumed = _checkpoint(out)
    assert resumed["global_step"] == 3 * ckpt["global_step"] // 2
    assert any(not torch.equal(resumed["state_dict"][k], averaged[k]) for k in weights)
    # the export is the averaged model: its metadata records the setting
    meta = json.loads((out / "export" / "face.json").read_text())
    assert meta["training"]["config"]["ema_decay"] == 0.9


def test_resume_of_a_folder_without_a_run_is_refused(tmp_path, run_cli, caplog):
    code, stdout = run_cli(["train", "--out", tmp_path / "never_trained", "--resume"])
    assert (code, stdout) == (2, "")
    assert any("no run to resume" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "never_trained").exists()


def test_ctrl_c_during_a_resumed_attempt_keeps_the_history(
    tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args, monkeypatch
):
    """Ctrl-C in a resumed attempt exits 130 and leaves metrics.csv with every epoch logged so far
    (Lightning's logger starts the file afresh; the earlier attempt's rows must come back)."""
    from genderclass.training.lightning_module import GenderModule

    out = tmp_path_factory.mktemp("runs") / "ctrl_c"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    step = GenderModule.training_step

    def interrupted_in_epoch_2(self, *args, **kwargs):
        if self.current_epoch == 2:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(GenderModule, "training_step", interrupted_in_epoch_2)
    code, stdout = run_cli(["train", "--out", out, "--resume", "--epochs", "4"])
    assert (code, stdout) == (130, "")
    assert _epochs_logged(out) == {0, 1}
    assert not (out / "metrics.previous.csv").exists()
    assert _checkpoint(out)["epoch"] == 1  # epoch 1 finished and saved: resumable again


def test_training_progress_in_a_log_is_plain_lines(
    tmp_path, face_folder_dataset, cache_dir, run_cli, train_args, capsys
):
    """stderr redirected to a file (``train ... 2> log``): one whole line per epoch with its validation
    metrics; no carriage-return redraws, cursor moves or validation bars."""
    capsys.readouterr()
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", tmp_path / "logged", "--epochs", "2",
            "--cache-dir", cache_dir, *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b[" not in err and "Validation" not in err
    epochs = [line for line in err.splitlines() if line.startswith(("Epoch", "Training"))]
    assert [line.split(":")[0] for line in epochs] == ["Epoch 0", "Epoch 1"]
    assert all("val_bal_acc=" in line for line in epochs)
