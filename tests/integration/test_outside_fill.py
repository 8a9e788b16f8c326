"""Training augmentation for faces cut from chips: other content beyond the chip's edge."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genderclass.training.augment import FaceAugment, fill_outside, to_float  # noqa: E402
from genderclass.training.datamodule import CachedImages  # noqa: E402


def _batch(n: int = 8, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.full((n, 3, size, size), 100.0)
    outside = torch.zeros(n, 1, size, size)
    outside[:, :, :4] = 1.0  # the top third lies beyond the chip
    return x, outside


def test_fill_outside_changes_only_the_marked_pixels():
    torch.manual_seed(0)
    x, outside = _batch()
    x[torch.arange(8), :, 0, 0] = torch.arange(8, dtype=torch.float32).view(8, 1) * 30  # samples differ there
    filled = fill_outside(x, outside, p=1.0)
    assert torch.equal(filled[:, :, 4:], x[:, :, 4:])
    assert (filled[:, :, :4] != x[:, :, :4]).any(dim=(1, 2, 3)).sum() >= 6  # most samples got new content
    assert filled.min() >= 0 and filled.max() <= 255
    assert torch.equal(fill_outside(x, outside, p=0.0), x)


def test_face_augment_reads_and_removes_the_mask_channel(monkeypatch):
    """The mask channel reaches fill_outside as a 0-1 mask after the geometric step, and leaves."""
    import genderclass.training.augment as augment

    seen = []

    def spy(x, outside, p, **kwargs):
        seen.append((outside.clone(), p))
        return fill_outside(x, outside, p, **kwargs)

    monkeypatch.setattr(augment, "fill_outside", spy)
    torch.manual_seed(0)
    x, outside = _batch()
    out = FaceAugment(channels=3, outside_fill=0.7)(torch.cat([x, outside * 255], dim=1))
    assert out.shape == x.shape
    ((mask, p),) = seen
    assert p == 0.7 and mask.shape == (8, 1, 12, 12) and mask.min() > -1e-3 and mask.max() < 1 + 1e-3
    assert 0.15 < float(mask.mean()) < 0.55  # about the top third, moved by rotation/zoom/shift
    assert FaceAugment(channels=3)(x).shape == x.shape and len(seen) == 1  # no mask channel: no fill


def test_only_training_batches_carry_the_mask(tmp_path):
    from genderclass.config import TrainConfig
    from genderclass.training.datamodule import CacheDataModule

    images = np.zeros((6, 8, 8, 3), dtype=np.uint8)
    outside = np.zeros((6, 8, 8), dtype=bool)
    outside[:, 0] = True
    splits = {"train": np.arange(4), "val": np.arange(4, 6)}
    labels = np.array([0, 1, 0, 1, 0, 1])
    filled = CacheDataModule(TrainConfig(outside_fill=0.5), images, labels, splits, outside=outside)
    assert filled.train_set[0][0].shape == (4, 8, 8) and filled.val_set[0][0].shape == (3, 8, 8)
    plain = CacheDataModule(TrainConfig(), images, labels, splits, outside=outside)
    assert plain.train_set[0][0].shape == (3, 8, 8)


def test_cached_images_carry_the_mask_as_one_more_channel():
    images = np.zeros((2, 6, 6, 3), dtype=np.uint8)
    outside = np.zeros((2, 6, 6), dtype=bool)
    outside[:, 0] = True
    with_mask = CachedImages(images, np.array([0, 1]), to_float(), outside=outside)
    x, y, _, teacher = with_mask[1]
    assert x.shape == (4, 6, 6) and x[3, 0].eq(255).all() and x[3, 1:].eq(0).all() and y == 1
    assert teacher.isnan()  # no exported teacher
    assert CachedImages(images, np.array([0, 1]), to_float())[0][0].shape == (3, 6, 6)


@pytest.mark.slow
def test_quiet_training_with_outside_fill(face_folder_dataset, cache_dir, tmp_path, train_args):
    """``genderclass -q train`` prints only its result (no progress bars, no Lightning INFO lines),
    and a run with --outside-fill trains (the mask channel reaches the augmentation) and records it."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "genderclass.cli.main", "-q", "train", "--data", str(face_folder_dataset),
            "--format", "folder", "--out", str(out), "--epochs", "1", "--cache-dir", str(cache_dir),
            "--outside-fill", "1", *train_args]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["run"] == str(out)
    assert json.loads((out / "config.json").read_text())["train"]["outside_fill"] == 1.0
