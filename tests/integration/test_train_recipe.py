"""``genderclass train --recipe FILE``: stages in order, then the export; a second run continues."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("yaml")

pytestmark = pytest.mark.slow


def _flags(args: list[str]) -> dict:
    """``["--arch", "small_resnet", "--no-detect"]`` -> ``{"arch": "small_resnet", "no_detect": True}``."""
    flags, i = {}, 0
    while i < len(args):
        key = args[i].lstrip("-").replace("-", "_")
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            flags[key], i = args[i + 1], i + 2
        else:
            flags[key], i = True, i + 1
    return flags


def test_a_recipe_trains_its_stages_exports_and_continues(tmp_path, face_folder_dataset, cache_dir, run_cli,
                                                          train_args, monkeypatch):  # fmt: skip
    import yaml

    monkeypatch.chdir(tmp_path)
    shared = {"data": str(face_folder_dataset), "format": "folder", "epochs": 1, "split_seed": 0, "cache_dir": str(cache_dir),
              **_flags(train_args)}  # fmt: skip
    recipe = {
        "runs": "runs/tiny",
        "train": shared,
        "stages": {"first": {"seed": 0}, "second": {"seed": 1, "init_from": "first"}},
        "export": {"runs": ["first", "second"], "out": "runs/tiny/export"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code, out = run_cli(["train", "--recipe", path, "--dry-run"])
    assert code == 0 and len(out.splitlines()) == 3 and not (tmp_path / "runs").exists()  # printed, nothing run

    assert run_cli(["train", "--recipe", path])[0] == 0
    runs = tmp_path / "runs" / "tiny"
    second = json.loads((runs / "second" / "config.json").read_text())
    assert second["train"]["init_from"].endswith("runs/tiny/first/checkpoints/best.ckpt")
    ensemble = json.loads((runs / "export" / "face.json").read_text())
    assert len(ensemble["training"]["members"]) == 2  # both stages, as one ensemble

    # everything exported: a second run trains nothing and exports again from the same runs
    first_export = (runs / "first" / "export" / "face.onnx").stat().st_mtime_ns
    code, out = run_cli(["train", "--recipe", path, "--dry-run"])
    assert code == 0 and out.splitlines() == [f"genderclass export {runs.relative_to(tmp_path) / 'first'} "
                                              f"{runs.relative_to(tmp_path) / 'second'} --out runs/tiny/export"]  # fmt: skip
    assert run_cli(["train", "--recipe", path])[0] == 0
    assert (runs / "first" / "export" / "face.onnx").stat().st_mtime_ns == first_export
