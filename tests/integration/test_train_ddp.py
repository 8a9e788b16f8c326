"""``train --accelerator cpu --devices 2 --strategy ddp``: two processes (DDP on gloo) train one run
that completes, resumes and exports as a single-process run does."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

from tests.integration.conftest import TRAIN_ARGS  # noqa: E402

pytestmark = pytest.mark.slow

DDP = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]


def _train(*argv) -> subprocess.CompletedProcess:
    """The CLI in a process of its own: Lightning's DDP launcher starts the second process by
    running the same command line again."""
    command = [sys.executable, "-m", "genderclass", "train", *map(str, argv)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def _steps(run: Path) -> int:
    return _checkpoint(run)["global_step"]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, face_folder_dataset, cache_dir) -> dict:
    out = tmp_path_factory.mktemp("ddp") / "run"
    first = _train("--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
                   "--cache-dir", cache_dir, *TRAIN_ARGS, *DDP)  # fmt: skip
    steps_after_one = _steps(out) if first.returncode == 0 else None
    config = json.loads((out / "config.json").read_text())
    config["train"]["epochs"] = 2  # as a 2-epoch run stopped after its first epoch leaves it
    (out / "config.json").write_text(json.dumps(config))
    resumed = _train("--out", out, "--resume", *DDP)
    return {"out": out, "first": first, "resumed": resumed, "steps_after_one": steps_after_one}


def test_two_processes_train_and_export_one_run(ddp_run):
    first, out = ddp_run["first"], ddp_run["out"]
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    assert len(lines) == 1  # only the first process prints its result
    assert json.loads(lines[0])["model"] == str(out / "export" / "face.onnx")
    train = json.loads((out / "config.json").read_text())["train"]
    assert (train["accelerator"], train["devices"], train["strategy"]) == ("cpu", "2", "ddp")
    # 64 training images, 16 per process and step, 2 processes: 2 steps per epoch, not 4
    split = list(csv.DictReader((out / "split.csv").open()))
    n_train = sum(row["split"] == "train" for row in split)
    assert ddp_run["steps_after_one"] == n_train // (16 * 2)
    # and the learning-rate schedule counts them so (its cosine would end halfway otherwise)
    assert _checkpoint(out)["hyper_parameters"]["steps_per_epoch"] == n_train // (16 * 2)
    assert json.loads((out / "config.json").read_text())["data"]["world_size"] == 2
    assert first.stderr.count("split sizes") == 1  # the second process reports errors only


def test_a_two_process_run_resumes_and_exports(ddp_run):
    resumed, out = ddp_run["resumed"], ddp_run["out"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _steps(out) == 2 * ddp_run["steps_after_one"]  # one more epoch, not a new start
    assert len(resumed.stdout.splitlines()) == 1
    with (out / "metrics.csv").open(newline="") as handle:
        epochs = {int(r["epoch"]) for r in csv.DictReader(handle) if r.get("val_auc")}
    assert epochs == {0, 1}
    from genderclass.inference.classifier import GenderClassifier

    clf = GenderClassifier.load(out / "export" / "face.onnx")
    assert clf.metadata["training"]["best_epoch"] in (0, 1, 2)


def test_resuming_on_another_number_of_processes_is_refused(ddp_run, run_cli, caplog):
    out = ddp_run["out"]
    config = json.loads((out / "config.json").read_text())
    config["train"]["epochs"] = 3
    (out / "config.json").write_text(json.dumps(config))
    before = _steps(out)
    code, _ = run_cli(["train", "--out", out, "--resume", "--devices", "1"])  # one process: its schedule differs
    assert code == 2 and _steps(out) == before
    assert "trained on 2 process(es)" in caplog.text
