"""``genderclass train --test-files LIST``: the listed files (and their duplicate groups) are the
test split, for training, export and ``--resume`` alike."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow

LISTED = [
    *(f"male_{i:03d}.png" for i in range(6)),  # bare names (each unique in the data)
    *(f"female/female_{i:03d}.png" for i in range(6)),  # paths relative to --data
    "female/female_999.png",  # not in the data
]
DUPLICATE = "male/male_dup.png"  # byte-identical to the listed male_000.png


def _split(run: Path) -> dict[str, str]:
    with (run / "split.csv").open(newline="") as handle:
        return {
            Path(row["path"]).relative_to(run.parent / "faces").as_posix(): row["split"]
            for row in csv.DictReader(handle)
        }


@pytest.fixture(scope="module")
def listed_run(tmp_path_factory, face_folder_dataset, cache_dir, run_cli, train_args) -> dict:
    """A 1-epoch run on the face folder plus one duplicate of a listed file, its test split a list."""
    root = tmp_path_factory.mktemp("listed")
    data = root / "faces"
    shutil.copytree(face_folder_dataset, data)
    shutil.copyfile(data / "male" / "male_000.png", data / DUPLICATE)
    listed = root / "test_files.txt"
    listed.write_text("\n".join(LISTED) + "\n")
    out = root / "run"
    argv = ["train", "--data", data, "--format", "folder", "--out", out, "--epochs", "1", "--cache-dir", cache_dir,
            "--test-files", listed, *train_args]  # fmt: skip
    handler = _Records()
    logging.getLogger("genderclass").addHandler(handler)
    try:
        code, _ = run_cli(argv)
    finally:
        logging.getLogger("genderclass").removeHandler(handler)
    assert code == 0
    return {"out": out, "data": data, "listed": listed, "log": "\n".join(handler.lines)}


class _Records(logging.Handler):
    """The run's log lines (a module fixture cannot use caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _expected_test() -> set[str]:
    return {f"male/male_{i:03d}.png" for i in range(6)} | {f"female/female_{i:03d}.png" for i in range(6)} | {DUPLICATE}


def test_the_listed_files_and_their_duplicates_are_the_test_split(listed_run):
    split = _split(listed_run["out"])
    assert {p for p, s in split.items() if s == "test"} == _expected_test()
    assert {s for p, s in split.items() if p not in _expected_test()} == {"train", "val"}
    log = listed_run["log"]
    assert f"1 files listed in {listed_run['listed']} are not in" in log  # the missing one, warned
    assert "test split: the 12 listed files and 1 more of their duplicate groups" in log
    config = json.loads((listed_run["out"] / "config.json").read_text())
    assert config["train"]["test_files"] == str(listed_run["listed"])
    assert config["data"]["split_sizes"]["test"] == 13


def test_export_measures_and_lists_the_listed_test_files(listed_run):
    export = listed_run["out"] / "export"
    assert set((export / "face.test_files.txt").read_text().split()) == _expected_test()
    meta = json.loads((export / "face.json").read_text())
    assert meta["training"]["split_sizes"]["test"] == 13 and meta["metrics"]["test"]["n"] == 13
    assert meta["training"]["config"]["test_files"] == str(listed_run["listed"])


def test_resume_splits_as_before_and_keeps_the_list(listed_run, run_cli, caplog):
    out = listed_run["out"]
    before = (out / "split.csv").read_bytes()
    config = json.loads((out / "config.json").read_text())
    config["train"]["epochs"] = 2  # as a 2-epoch run stopped after its first
    (out / "config.json").write_text(json.dumps(config))
    assert run_cli(["train", "--out", out, "--resume"])[0] == 0
    assert (out / "split.csv").read_bytes() == before
    assert set((out / "export" / "face.test_files.txt").read_text().split()) == _expected_test()
    other = listed_run["listed"].with_name("other.txt")
    other.write_text("male_010.png\n")
    code, stdout = run_cli(["train", "--out", out, "--resume", "--test-files", other])
    assert code != 0 and stdout == "" and "cannot change test_files" in caplog.text
