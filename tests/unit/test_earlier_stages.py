"""A fine-tuned run's export names every earlier ``--init-from`` stage, oldest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from genderclass.training.lineage import earlier_stages, training_folder  # noqa: E402


def _stage(root: Path, name: str, init_from: str = "", epoch: int = 3, config_file: bool = True) -> str:
    """A run folder with a best checkpoint that stores its own config, as training writes it."""
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "best.ckpt"
    torch.save({"epoch": epoch, "hyper_parameters": {"config": {"init_from": init_from}}}, checkpoint)
    if config_file:
        (run / "config.json").write_text(json.dumps({"command": f"genderclass train --out {name}"}))
    return str(checkpoint)


def test_chain_is_followed_to_the_first_stage(tmp_path):
    first = _stage(tmp_path, "s1", epoch=21)
    second = _stage(tmp_path, "s2", init_from=first, epoch=19)
    stages = earlier_stages(second)
    assert [s["command"] for s in stages] == ["genderclass train --out s1", "genderclass train --out s2"]
    assert [s["epoch"] for s in stages] == [21, 19]
    assert [s["checkpoint"] for s in stages] == [first, second]
    assert earlier_stages("") == []


def test_missing_pieces_end_the_chain_with_what_is_known(tmp_path):
    gone = str(tmp_path / "deleted" / "checkpoints" / "best.ckpt")
    orphan = _stage(tmp_path, "orphan", init_from=gone, epoch=5, config_file=False)
    stages = earlier_stages(orphan)
    assert stages == [
        {"checkpoint": gone, "command": None, "epoch": None},
        {"checkpoint": orphan, "command": None, "epoch": 5},
    ]


def test_a_looping_chain_stops(tmp_path):
    a = tmp_path / "a" / "checkpoints" / "best.ckpt"
    b = _stage(tmp_path, "b", init_from=str(a))
    _stage(tmp_path, "a", init_from=b)
    assert [s["command"] for s in earlier_stages(b)] == ["genderclass train --out a", "genderclass train --out b"]


def test_relative_paths_resolve_against_the_training_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    monkeypatch.chdir(project.parent)
    first = _stage(project, "runs/s1", epoch=7)
    second = _stage(project, "runs/s2", init_from=str(Path(first).relative_to(project)), epoch=8)
    run = project / "runs" / "s3"
    run.mkdir(parents=True)
    assert training_folder(run, "runs/s3") == project.resolve()
    assert training_folder(run, "other/s3") is None and training_folder(run, "../s3") is None
    monkeypatch.chdir(tmp_path / "project" / "runs")  # exported from somewhere else
    stages = earlier_stages(str(Path(second).relative_to(project)), base=training_folder(run, "runs/s3"))
    assert [s["epoch"] for s in stages] == [7, 8]
    assert [s["command"] for s in stages] == ["genderclass train --out runs/s1", "genderclass train --out runs/s2"]
    assert stages[0]["checkpoint"] == "runs/s1/checkpoints/best.ckpt"  # as recorded, no machine path


def test_an_unreadable_checkpoint_ends_the_chain(tmp_path):
    first = _stage(tmp_path, "s1")
    second = _stage(tmp_path, "s2", init_from=first, epoch=4)
    Path(first).write_bytes(b"not a checkpoint")
    stages = earlier_stages(second)
    assert stages == [
        {"checkpoint": first, "command": "genderclass train --out s1", "epoch": None},
        {"checkpoint": second, "command": "genderclass train --out s2", "epoch": 4},
    ]


def test_teachers_are_recorded_relative_to_the_training_folder_with_their_stages(tmp_path, monkeypatch):
    from genderclass.training.lineage import portable_teacher, teacher_lineages

    project = tmp_path / "project"
    monkeypatch.chdir(tmp_path)
    first = _stage(project, "runs/t1", epoch=21)
    second = _stage(project, "runs/t2", init_from=str(Path(first).relative_to(project)), epoch=11)
    other = _stage(project, "runs/u1", epoch=9)
    outside = str(Path(tmp_path.anchor) / "elsewhere-teacher" / "best.ckpt")  # outside both folders
    recorded = ",".join(str(Path(p).resolve()) for p in (second, other)) + "," + outside  # as training stores it
    portable = portable_teacher(recorded, project)
    assert portable.split(",") == ["runs/t2/checkpoints/best.ckpt", "runs/u1/checkpoints/best.ckpt", outside]
    assert portable_teacher("", project) == ""
    # no training folder known (an absolute --out): relative to the current folder instead
    assert portable_teacher(recorded, None).split(",")[:2] == [f"project/{p}" for p in portable.split(",")[:2]]
    assert portable_teacher(recorded, None).split(",")[2] == outside
    lineages = teacher_lineages(portable, project)
    assert [[s["epoch"] for s in lineage] for lineage in lineages] == [[21, 11], [9], [None]]
    assert lineages[0][-1]["command"] == "genderclass train --out runs/t2"
