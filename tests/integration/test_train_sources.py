"""``--init-from`` / ``--teacher``: a model that trained on files this run holds out is refused."""

from __future__ import annotations

from pathlib import Path

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


def test_a_run_starts_from_an_exported_model(source_run, face_folder_dataset, cache_dir, run_cli, train_args, tmp_path):
    """``--init-from NAME.onnx``: the exported network, read back; its metadata records where it came
    from; another network width is refused before the run folder is written."""
    import json

    exported = source_run.parent.parent / "export" / "face.onnx"
    common = ["--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir,
              *train_args]  # fmt: skip
    out = tmp_path / "stage2"
    code, stdout = run_cli(["train", "--out", out, "--init-from", exported, *common])
    assert code == 0, stdout
    stages = json.loads((out / "export" / "face.json").read_text())["training"]["earlier_stages"]
    assert stages[-1]["checkpoint"] == str(exported) and stages[-1]["exported"] is True
    assert stages[-1]["command"].startswith("genderclass train")
    wider = tmp_path / "wider"
    args = list(train_args)
    args[args.index("--width") + 1] = str(2 * float(args[args.index("--width") + 1]))
    code, _ = run_cli(["train", "--out", wider, "--init-from", exported, *common[: -len(train_args)], *args])
    assert code == 2 and not (wider / "config.json").exists()


def test_a_mix_may_hold_out_files_of_a_source_the_exported_model_never_saw(
    source_run, face_folder_dataset, cache_dir, run_cli, train_args, tmp_path, caplog
):
    """Fine-tuning the exported model on its data plus another source, holding out its own test files
    and some of the other source's: those lie outside the data it trained on, so they pass; a file of
    its own training split held out is still refused."""
    import numpy as np
    from PIL import Image
    from tests.integration.conftest import synthetic_face

    exported = source_run.parent.parent / "export" / "face.onnx"
    other = tmp_path / "other"
    other.mkdir()
    rng = np.random.default_rng(7)
    rows = [f"{p},{p.parent.name}" for p in sorted(face_folder_dataset.glob("*/*.png"))]
    for i in range(20):
        label = ("male", "female")[i % 2]
        Image.fromarray(synthetic_face(i % 2, rng)).save(other / f"o{i:02d}.png")
        rows.append(f"{other / f'o{i:02d}.png'},{label}")
    manifest = tmp_path / "mix.csv"
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    own_test = (exported.with_name("face.test_files.txt")).read_text().split()
    listed = tmp_path / "test.txt"
    listed.write_text("\n".join([*own_test, *(f"o{i:02d}.png" for i in range(6))]) + "\n")
    common = ["--data", manifest, "--format", "csv", "--epochs", "1", "--cache-dir", cache_dir,
              "--init-from", exported, *train_args]  # fmt: skip
    code, stdout = run_cli(["train", "--out", tmp_path / "mix", "--test-files", listed, *common])
    assert code == 0, stdout
    assert "6 test files lie outside" in caplog.text
    trained = [line.split(",")[0] for line in (source_run.parent.parent / "split.csv").read_text().splitlines()
               if line.endswith(",train")]  # fmt: skip
    listed.write_text("\n".join([*own_test, Path(trained[0]).name]) + "\n")
    caplog.clear()
    assert run_cli(["train", "--out", tmp_path / "leak", "--test-files", listed, *common])[0] == 2
    assert "may have trained on 1 files this run holds out" in caplog.text
