"""Recipes (training/recipe.py): parsing, stage references, commands in each state, dry runs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("yaml")

from genderclass.training.recipe import (  # noqa: E402
    export_command,
    load_recipe,
    run_recipe,
    stage_command,
    stage_state,
)

ROOT = Path(__file__).resolve().parents[2]

RECIPE = """
runs: RUNS
train: {modality: face, data: photos, format: folder, threads: 2}
stages:
  one: {seed: 0}
  two: {init_from: one, input_size: 112, lr: 2.0e-3}
  kd: {init_from: two, teacher: [one, two], aux_task: none}
export: {runs: [kd, two], quantize: int8, no_flip_tta: true}
"""


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace("RUNS", str(tmp_path / "runs")))
    return path


def test_a_stage_is_one_train_command_with_shared_and_own_flags(recipe_file, tmp_path):
    recipe = load_recipe(recipe_file)
    runs = tmp_path / "runs"
    assert stage_command(recipe, "one") == [
        "train", "--out", str(runs / "one"), "--modality", "face", "--data", "photos", "--format", "folder",
        "--threads", "2", "--seed", "0",
    ]  # fmt: skip
    two = stage_command(recipe, "two")
    assert two[two.index("--init-from") + 1] == str(runs / "one" / "checkpoints" / "best.ckpt")
    assert two[two.index("--input-size") + 1] == "112" and two[two.index("--lr") + 1] == "0.002"
    kd = stage_command(recipe, "kd")
    best = [str(runs / name / "checkpoints" / "best.ckpt") for name in ("one", "two")]
    assert kd[kd.index("--teacher") + 1] == ",".join(best)
    assert export_command(recipe) == [
        "export", str(runs / "kd"), str(runs / "two"), "--quantize", "int8", "--no-flip-tta",
    ]  # fmt: skip


def test_teacher_views_from_and_calibrate_with_name_stages_run_folders(tmp_path):
    path = tmp_path / "r.yaml"
    stages = (
        "  k0: {fold: 0, teacher: t.onnx, teacher_views: 8}\n"
        "  k1: {fold: 1, teacher: t.onnx, teacher_views: 8, teacher_views_from: [k0, elsewhere/k9]}\n"
    )
    head = f"runs: {tmp_path / 'runs'}\ntrain: {{modality: fingerprint, data: prints, folds: 3}}\nstages:\n"
    path.write_text(head + stages + "export: {runs: [k0], calibrate_with: [k1], quantize: int8}\n")
    recipe = load_recipe(path)
    k1 = stage_command(recipe, "k1")
    assert k1[k1.index("--teacher-views-from") + 1] == f"{tmp_path / 'runs' / 'k0'},elsewhere/k9"
    runs = tmp_path / "runs"
    assert export_command(recipe) == ["export", str(runs / "k0"), "--quantize", "int8", "--calibrate-with",
                                      str(runs / "k1")]  # fmt: skip
    path.write_text(head + stages.replace("[k0,", "[k2,") + "  k2: {fold: 2}\nexport: {runs: [k0]}\n")
    with pytest.raises(ValueError, match="'k1' uses 'k2' before it is trained"):
        load_recipe(path)


def test_a_started_stage_resumes_and_an_exported_one_is_skipped(recipe_file, tmp_path, capsys):
    recipe = load_recipe(recipe_file)
    run = recipe.run_folder("one")
    assert stage_state(run) == "new"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert stage_state(run) == "started"
    assert stage_command(recipe, "one") == ["train", "--out", str(run), "--resume", "--threads", "2"]
    (run / "export").mkdir()
    (run / "export" / "face.onnx").write_bytes(b"")
    assert stage_state(run) == "done"
    assert run_recipe(recipe, dry_run=True) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in printed[:-1]] == [str(recipe.run_folder(s)) for s in ("two", "kd")]
    assert printed[-1].startswith("genderclass export ")


def test_runs_folder_can_be_overridden(recipe_file, tmp_path):
    assert load_recipe(recipe_file, runs=tmp_path / "elsewhere").run_folder("one") == tmp_path / "elsewhere" / "one"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: {}", "needs a 'stages' mapping"),
        ("stages: {a: {}}\nstage: {}", "unknown key(s) stage"),
        ("stages: {a: {init_from: b}, b: {}}", "stage 'a' uses 'b' before it is trained"),
        ("stages: {a: {}}\nexport: {runs: [a, c]}", "export names unknown stage(s) c"),
        ("stages: [a", "cannot read recipe"),
    ],
)
def test_broken_recipes_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recipe(path)


@pytest.mark.parametrize("name", ["face.yaml", "fingerprint.yaml", "fingerprint-distilled.yaml"])
def test_the_shipped_recipes_parse_and_every_flag_exists(name):
    from genderclass.cli.main import build_parser

    recipe = load_recipe(ROOT / "recipes" / name)
    parser = build_parser()
    for stage in recipe.stages:
        parser.parse_args(stage_command(recipe, stage))  # an unknown flag exits with status 2
    parser.parse_args(export_command(recipe))
