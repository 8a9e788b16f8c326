"""metrics.csv keeps every attempt's rows when a run is interrupted and resumed (training curves)."""

from __future__ import annotations

import csv
from pathlib import Path

from genderclass.training.history import copy_metrics, restore_metrics, stash_metrics

STEPS = 10  # optimiser steps per epoch


def _attempt(path: Path, first_epoch: int, last_epoch: int) -> None:
    """What Lightning's CSV logger writes for an attempt (it starts the file afresh): per epoch, a
    learning-rate row at the epoch's first step and a validation row at its last."""
    rows = []
    for epoch in range(first_epoch, last_epoch + 1):
        rows.append({"epoch": "", "lr": "0.001", "step": str(epoch * STEPS), "val_auc": ""})
        rows.append({"epoch": str(epoch), "lr": "", "step": str(epoch * STEPS + STEPS - 1), "val_auc": "0.7"})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["epoch", "lr", "step", "val_auc"])
        writer.writeheader()
        writer.writerows(rows)


def _history(run: Path) -> tuple[list[int], list[int]]:
    with (run / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [int(r["epoch"]) for r in rows if r["epoch"]], [int(r["step"]) for r in rows if not r["epoch"]]


def test_a_resumed_attempt_follows_the_earlier_rows(tmp_path):
    _attempt(tmp_path / "metrics.csv", 0, 4)  # stopped during epoch 5, after logging its start
    stash_metrics(tmp_path)
    assert not (tmp_path / "metrics.csv").exists()  # Lightning would have deleted it
    _attempt(tmp_path / "metrics.csv", 3, 6)  # resumed from the checkpoint of epoch 2
    restore_metrics(tmp_path)
    epochs, lr_steps = _history(tmp_path)
    assert epochs == [0, 1, 2, 3, 4, 5, 6]  # the repeated epochs 3-4 come from the resumed attempt only
    assert lr_steps == [0, 10, 20, 30, 40, 50, 60]
    assert not (tmp_path / "metrics.previous.csv").exists()


def test_an_attempt_killed_before_its_rows_were_merged_loses_nothing(tmp_path):
    _attempt(tmp_path / "metrics.csv", 0, 2)
    stash_metrics(tmp_path)
    _attempt(tmp_path / "metrics.csv", 3, 5)  # killed outright: restore_metrics never ran
    stash_metrics(tmp_path)  # the next resume
    _attempt(tmp_path / "metrics.csv", 6, 7)
    restore_metrics(tmp_path)
    assert _history(tmp_path)[0] == list(range(8))


def test_a_killed_attempt_that_logged_nothing_keeps_the_history(tmp_path):
    _attempt(tmp_path / "metrics.csv", 0, 2)
    stash_metrics(tmp_path)  # killed before Lightning wrote a row
    stash_metrics(tmp_path)
    _attempt(tmp_path / "metrics.csv", 3, 3)
    restore_metrics(tmp_path)
    assert _history(tmp_path)[0] == [0, 1, 2, 3]


def test_new_columns_of_a_resumed_attempt_are_kept(tmp_path):
    _attempt(tmp_path / "metrics.csv", 0, 0)
    stash_metrics(tmp_path)
    with (tmp_path / "metrics.csv").open("w", newline="") as handle:
        handle.write("epoch,step,val_auc,val_loss\n1,19,0.8,0.5\n")
    restore_metrics(tmp_path)
    with (tmp_path / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["", "0", "1"] and rows[-1]["val_loss"] == "0.5"
    assert rows[0]["lr"] == "0.001" and rows[-1]["lr"] == ""


def test_restore_without_a_stash_leaves_the_file_alone(tmp_path):
    _attempt(tmp_path / "metrics.csv", 0, 1)
    before = (tmp_path / "metrics.csv").read_bytes()
    restore_metrics(tmp_path)
    assert (tmp_path / "metrics.csv").read_bytes() == before


def test_an_export_copies_the_whole_history_of_a_killed_attempt_without_touching_the_run(tmp_path):
    run, dest = tmp_path / "run", tmp_path / "face.metrics.csv"
    run.mkdir()
    _attempt(run / "metrics.csv", 0, 2)
    stash_metrics(run)
    _attempt(run / "metrics.csv", 3, 4)  # killed: the earlier rows are still stashed
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert copy_metrics(run, dest)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    with dest.open(newline="") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle) if r["epoch"]] == [0, 1, 2, 3, 4]
    assert not copy_metrics(tmp_path / "never_trained", dest)
