"""A fine-tuned run's export names every earlier ``--init-from`` stage, oldest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from genderclass.training.export import earlier_stages  # noqa: E402


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
