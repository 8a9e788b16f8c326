"""``genderclass train --teacher CKPT``: knowledge distillation from one of our own checkpoints."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("onnx")

from genderclass.config import (  # noqa: E402
    PreprocessConfig,
    TrainConfig,
    teacher_checkpoints,  # noqa: E402
)
from genderclass.training.lightning_module import GenderModule  # noqa: E402
from genderclass.training.teachers import load_teacher  # noqa: E402

pytestmark = pytest.mark.slow


def _module(teacher: torch.nn.Module, size: int, *more: tuple[torch.nn.Module, int], **overrides) -> GenderModule:
    cfg = TrainConfig(arch="small_resnet", width=0.25, teacher="unused.ckpt", **overrides)
    cfg.preprocess.input_size = 32
    module = GenderModule(cfg.to_dict())
    module._teachers = [(teacher.eval(), size), *((net.eval(), n) for net, n in more)]
    return module


class _FixedLogits(torch.nn.Module):
    """A stand-in teacher: returns the given logits and remembers the input size it saw."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.seen: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = tuple(x.shape)
        return self.logits


def test_distillation_loss_is_softened_cross_entropy_with_the_teacher():
    teacher_logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    teacher = _FixedLogits(teacher_logits)
    module = _module(teacher, size=24, distill_temperature=2.0)
    x = torch.rand(4, 3, 32, 32) * 255
    # gradient is zero when the student already matches the teacher, and points towards it otherwise
    student = teacher_logits.clone().requires_grad_(True)
    module._distill_loss(student, x).backward()
    assert torch.allclose(student.grad, torch.zeros(4), atol=1e-6)
    assert teacher.seen == (4, 3, 24, 24)  # the batch is resized to the teacher's own input size
    student = torch.zeros(4, requires_grad=True)
    loss = module._distill_loss(student, x)
    loss.backward()
    assert torch.all(torch.sign(-student.grad) == torch.sign(teacher_logits))
    target = torch.sigmoid(teacher_logits / 2.0)
    expected = 4.0 * torch.nn.functional.binary_cross_entropy(torch.full((4,), 0.5), target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_several_teachers_teach_by_their_mean_logit():
    first, second = _FixedLogits(torch.tensor([2.0, -1.0])), _FixedLogits(torch.tensor([0.0, -3.0]))
    module = _module(first, 24, (second, 32), distill_temperature=1.0)
    student = torch.zeros(2, requires_grad=True)
    loss = module._distill_loss(student, torch.rand(2, 3, 32, 32) * 255)
    assert first.seen == (2, 3, 24, 24) and second.seen == (2, 3, 32, 32)  # each at its own input size
    target = torch.sigmoid(torch.tensor([1.0, -2.0]))  # the mean logit, not the mean probability
    expected = torch.nn.functional.binary_cross_entropy(torch.full((2,), 0.5), target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert teacher_checkpoints(" a.ckpt, b.ckpt ,") == ["a.ckpt", "b.ckpt"]


def test_training_with_a_teacher(tmp_path_factory, face_folder_dataset, run_cli, train_args, monkeypatch):
    """A teacher trained at another input size teaches a student; the student's checkpoint and export
    hold only the student, and the export works without the teacher file."""
    runs = tmp_path_factory.mktemp("runs")
    cache_dir = tmp_path_factory.mktemp("distill-cache")  # its own: other tests count the shared cache's files
    base = ["train", "--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir]
    teacher_args = [a if a != "32" else "40" for a in train_args]  # --input-size 40
    assert run_cli([*base, "--out", runs / "teacher", *teacher_args])[0] == 0
    teacher_ckpt = runs / "teacher" / "checkpoints" / "best.ckpt"
    net, size = load_teacher(str(teacher_ckpt))
    assert size == 40 and not net.training and not any(p.requires_grad for p in net.parameters())
    gray = PreprocessConfig.for_modality("face", channels=1, mean=(0.5,), std=(0.25,))
    with pytest.raises(ValueError, match="channels, mean, std"):
        load_teacher(str(teacher_ckpt), gray)  # a teacher must see what the student sees

    # refused before the run folder is written (it was refused once training started)
    other = [*base, "--out", runs / "other", *train_args, "--margin", "0.5", "--teacher", teacher_ckpt]
    assert run_cli(other) == (2, "") and not (runs / "other").exists()

    code, stdout = run_cli([*base, "--out", runs / "student", *train_args, "--teacher", teacher_ckpt])
    assert code == 0
    config = json.loads((runs / "student" / "config.json").read_text())["train"]
    assert config["teacher"] == str(teacher_ckpt) and config["distill_weight"] == 0.5
    state = torch.load(runs / "student" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert all(k.startswith(("model.", "pos_weight", "val_metrics")) for k in state["state_dict"])
    # an ensemble of teachers (here the same one twice, from a relative path): resolved and kept in order
    pair = f"{teacher_ckpt},{teacher_ckpt.relative_to(runs.parent)}"
    monkeypatch.chdir(runs.parent)
    assert run_cli([*base, "--out", f"{runs.name}/pair", *train_args, "--teacher", pair])[0] == 0
    saved = json.loads((runs / "pair" / "config.json").read_text())["train"]["teacher"]
    assert saved == f"{teacher_ckpt},{teacher_ckpt}"
    # its export names the teachers relative to the training folder, each with the command that trained it
    assert run_cli(["export", runs / "pair"])[0] == 0
    training = json.loads((runs / "pair" / "export" / "face.json").read_text())["training"]
    relative = str(teacher_ckpt.relative_to(runs.parent))
    assert training["config"]["teacher"] == f"{relative},{relative}"
    assert [[s["checkpoint"] for s in lineage] for lineage in training["teachers"]] == [[relative], [relative]]
    assert "--input-size 40" in training["teachers"][0][0]["command"]
    teacher_ckpt.unlink()  # exporting the student never needs its teacher
    assert run_cli(["export", runs / "student"])[0] == 0
    assert (runs / "student" / "export" / "face.onnx").is_file()


def test_an_exported_model_teaches_from_logits_computed_once(tmp_path, face_folder_dataset, cache_dir, run_cli,
                                                             train_args):  # fmt: skip
    import numpy as np

    from genderclass.data.prepare import prepare_data
    from genderclass.inference.classifier import GenderClassifier
    from genderclass.training.teachers import TEACHER_LOGITS

    common = ["--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir,
              *train_args]  # fmt: skip
    assert run_cli(["train", "--out", tmp_path / "teacher", *common])[0] == 0
    teacher = tmp_path / "teacher" / "export" / "face.onnx"
    student = tmp_path / "student"
    code, out = run_cli(["train", "--out", student, "--teacher", teacher, *common])
    assert code == 0, out
    logits = np.load(student / TEACHER_LOGITS)
    config = TrainConfig.from_dict(json.loads((student / "config.json").read_text())["train"])
    data = prepare_data(config)
    train = data.indices("train")
    assert np.isfinite(logits[train]).all() and np.isnan(np.delete(logits, train)).all()
    # the teacher's own logits on the un-augmented training crops
    expected = GenderClassifier.load(teacher).logits(list(data.cache.images[train]))
    assert np.allclose(logits[train], expected, atol=1e-4)
    card = json.loads((student / "export" / "face.json").read_text())["training"]
    assert card["teachers"][0][0]["checkpoint"].endswith("teacher/export/face.onnx")


def test_an_exported_teacher_scores_the_views_the_student_trains_on(tmp_path, face_folder_dataset, cache_dir,
                                                                     run_cli, train_args):  # fmt: skip
    import numpy as np

    from genderclass.inference.classifier import GenderClassifier
    from genderclass.training.teachers import TEACHER_VIEWS

    common = ["--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir,
              *train_args]  # fmt: skip
    assert run_cli(["train", "--out", tmp_path / "teacher", *common])[0] == 0
    teacher = tmp_path / "teacher" / "export" / "face.onnx"
    student = tmp_path / "student"
    code, out = run_cli(["train", "--out", student, "--teacher", teacher, "--teacher-views", "3", *common])
    assert code == 0, out
    with np.load(student / TEACHER_VIEWS) as stored:
        views, logits, paths = stored["views"], stored["logits"], stored["paths"]
    assert views.shape[:2] == logits.shape == (len(paths), 3) and views.dtype == np.uint8
    assert not np.array_equal(views[:, 0], views[:, 1])  # drawn apart, each with its own score
    # each logit is the teacher's on that very view (same input size here: no resizing between them)
    expected = GenderClassifier.load(teacher).logits(list(views.reshape(-1, *views.shape[2:])))
    assert np.allclose(logits.reshape(-1), expected, atol=1e-4)
    # resuming reads them back instead of drawing others
    before = (student / TEACHER_VIEWS).stat().st_mtime_ns
    assert run_cli(["train", "--out", student, "--resume", "--epochs", "2"])[0] == 0
    assert (student / TEACHER_VIEWS).stat().st_mtime_ns == before
    # views need an exported teacher to score them
    checkpoint = tmp_path / "teacher" / "checkpoints" / "best.ckpt"
    assert (
        run_cli(["train", "--out", tmp_path / "ckpt", "--teacher", checkpoint, "--teacher-views", "2", *common])[0] == 2
    )


def test_a_run_reuses_the_views_another_fold_drew_of_the_same_images(tmp_path, face_folder_dataset, cache_dir,
                                                                     run_cli, train_args):  # fmt: skip
    import numpy as np

    from genderclass.inference.classifier import GenderClassifier
    from genderclass.training.teachers import TEACHER_VIEWS

    common = ["--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir,
              *train_args]  # fmt: skip
    assert run_cli(["train", "--out", tmp_path / "teacher", *common])[0] == 0
    teacher = tmp_path / "teacher" / "export" / "face.onnx"
    views = ["--teacher", teacher, "--teacher-views", "2", "--folds", "3"]
    assert run_cli(["train", "--out", tmp_path / "k0", "--fold", "0", *views, *common])[0] == 0
    code, out = run_cli(["train", "--out", tmp_path / "k1", "--fold", "1", *views, "--teacher-views-from",
                         tmp_path / "k0", *common])  # fmt: skip
    assert code == 0, out
    with np.load(tmp_path / "k0" / TEACHER_VIEWS) as k0, np.load(tmp_path / "k1" / TEACHER_VIEWS) as k1:
        donor = {p: (v, lg) for p, v, lg in zip(k0["paths"], k0["views"], k0["logits"], strict=True)}
        shared = [i for i, p in enumerate(k1["paths"]) if p in donor]
        drawn = [i for i, p in enumerate(k1["paths"]) if p not in donor]
        assert shared and drawn  # fold 2 trains both runs; fold 0 only the second
        for i in shared:
            assert np.array_equal(k1["views"][i], donor[k1["paths"][i]][0])
            assert np.array_equal(k1["logits"][i], donor[k1["paths"][i]][1])
        fresh = k1["views"][drawn].reshape(-1, *k1["views"].shape[2:])
        expected = GenderClassifier.load(teacher).logits(list(fresh))
        assert np.allclose(k1["logits"][drawn].reshape(-1), expected, atol=1e-4)
    # views drawn otherwise (here: three per image) are refused, before the run folder is written
    other = ["--teacher", teacher, "--teacher-views", "3", "--folds", "3", "--fold", "1"]
    code, out = run_cli(["train", "--out", tmp_path / "k1b", *other, "--teacher-views-from", tmp_path / "k0",
                         *common])  # fmt: skip
    assert code == 2 and not (tmp_path / "k1b" / "config.json").exists()
    assert run_cli(["train", "--out", tmp_path / "k1c", "--teacher-views-from", tmp_path / "k0", *common])[0] == 2


def test_an_exported_teacher_must_not_have_seen_the_test_files(tmp_path, face_folder_dataset, cache_dir, run_cli,
                                                               train_args):  # fmt: skip
    common = ["--data", face_folder_dataset, "--format", "folder", "--epochs", "1", "--cache-dir", cache_dir,
              *train_args]  # fmt: skip
    assert run_cli(["train", "--out", tmp_path / "teacher", *common])[0] == 0
    teacher = tmp_path / "teacher" / "export" / "face.onnx"
    # another split: some of its test files were the teacher's training files
    assert run_cli(["train", "--out", tmp_path / "other", "--teacher", teacher, "--split-seed", "5", *common])[0] == 2
    assert not (tmp_path / "other" / "config.json").exists()
    checkpoint = tmp_path / "teacher" / "checkpoints" / "best.ckpt"
    mixed = f"{teacher},{checkpoint}"
    assert run_cli(["train", "--out", tmp_path / "mixed", "--teacher", mixed, *common])[0] == 2
