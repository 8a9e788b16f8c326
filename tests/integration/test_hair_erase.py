"""Training augmentation for faces: the hair above the brows (and beside the face) replaced."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from genderclass.config import TrainConfig  # noqa: E402
from genderclass.faces.crop import hair_region  # noqa: E402
from genderclass.training.augment import FaceAugment, erase_hair, train_augment  # noqa: E402

SIZE = 48
REGION = hair_region(0.05)
# the first rows below the band and below the sides (13 and 28 of 48), the first column inside the face (5)
BROW, EARS, SIDE = (math.ceil(fraction * SIZE) for fraction in (REGION.brow, REGION.ears, REGION.side))


def _faces(n: int = 8) -> torch.Tensor:
    """Distinct images: each sample its own random pixels."""
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 255


def _changed(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Per sample: whether any pixel differs."""
    return (before != after).flatten(1).any(dim=1)


def test_the_band_above_the_brows_changes_and_the_face_below_does_not():
    torch.manual_seed(0)
    x = _faces()
    erased = erase_hair(x, p=1.0, region=REGION, sides=1.0)
    middle = slice(SIDE + 1, SIZE - SIDE - 1)
    assert torch.equal(erased[:, :, BROW:, middle], x[:, :, BROW:, middle])  # eyes, nose, mouth untouched
    assert torch.equal(erased[:, :, EARS:], x[:, :, EARS:])  # below the ear lobes nothing changes
    assert _changed(x[:, :, :BROW], erased[:, :, :BROW]).sum() >= 7  # another face's band may be its own
    assert _changed(x[:, :, BROW:EARS, :SIDE], erased[:, :, BROW:EARS, :SIDE]).sum() >= 7  # the sides too
    assert erased.min() >= 0 and erased.max() <= 255


def test_the_sides_are_erased_only_in_their_share_of_the_samples():
    torch.manual_seed(0)
    x = _faces(64)
    band_only = erase_hair(x, p=1.0, region=REGION, sides=0.0)
    assert torch.equal(band_only[:, :, BROW:], x[:, :, BROW:])
    half = erase_hair(x, p=1.0, region=REGION, sides=0.5)
    sides = _changed(x[:, :, BROW:EARS, :SIDE], half[:, :, BROW:EARS, :SIDE])
    assert 16 <= int(sides.sum()) <= 48


def test_nothing_changes_with_p_zero():
    x = _faces()
    assert erase_hair(x, p=0.0, region=REGION) is x
    torch.manual_seed(0)
    some = erase_hair(x, p=0.5, region=REGION)
    assert 0 < int(_changed(x, some).sum()) < 8


def test_face_augment_erases_before_the_geometry_and_not_the_mask_channel(monkeypatch):
    import genderclass.training.augment as augment

    seen = []

    def spy(x, p, region, **kwargs):
        seen.append((x.clone(), p, region))
        return erase_hair(x, p, region, **kwargs)

    monkeypatch.setattr(augment, "erase_hair", spy)
    x = _faces()
    with_mask = torch.cat([x, torch.zeros(8, 1, SIZE, SIZE)], dim=1)
    out = FaceAugment(channels=3, outside_fill=0.5, hair_erase=0.7, margin=0.1)(with_mask)
    ((pixels, p, region),) = seen
    assert out.shape == x.shape and torch.equal(pixels, x)  # the aligned crop, its 3 channels only
    assert p == 0.7 and region == hair_region(0.1)
    FaceAugment(channels=3)(x)
    assert len(seen) == 1  # off by default: never called


def test_the_setting_is_checked_recorded_and_reaches_the_training_augmentation():
    cfg = TrainConfig.for_modality("face", hair_erase=0.4)
    restored = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert restored.hair_erase == 0.4 and TrainConfig.from_dict({}).hair_erase == 0.0  # older configs: off
    augment = train_augment(restored.preprocess, restored.outside_fill, restored.augment, restored.hair_erase)
    assert augment.hair_erase == 0.4 and augment.hair == hair_region(restored.preprocess.margin)
    with pytest.raises(ValueError, match="face crops only"):
        TrainConfig.for_modality("fingerprint", hair_erase=0.4)
    with pytest.raises(ValueError, match="probability"):
        TrainConfig(hair_erase=1.5)
    with pytest.raises(ValueError, match="do not combine"):
        TrainConfig(hair_erase=0.4, teacher="t.onnx", teacher_views=2)


@pytest.mark.slow
def test_a_run_with_hair_erase_trains_records_and_resumes_it(
    tmp_path, face_folder_dataset, cache_dir, run_cli, train_args, caplog
):
    pytest.importorskip("lightning")
    pytest.importorskip("onnx")
    out = tmp_path / "run"
    argv = ["train", "--data", face_folder_dataset, "--format", "folder", "--out", out, "--epochs", "1",
            "--cache-dir", cache_dir, "--hair-erase", "1", *train_args]  # fmt: skip
    assert run_cli(argv)[0] == 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["hair_erase"] == 1.0
    config["train"]["epochs"] = 2  # as a 2-epoch run stopped after its first
    (out / "config.json").write_text(json.dumps(config))
    assert run_cli(["train", "--out", out, "--resume", "--hair-erase", "1"])[0] == 0  # the same value: no change
    assert json.loads((out / "config.json").read_text())["train"]["hair_erase"] == 1.0
    meta = json.loads((out / "export" / "face.json").read_text())
    assert meta["training"]["config"]["hair_erase"] == 1.0
    code, stdout = run_cli(["train", "--out", out, "--resume", "--hair-erase", "0"])
    assert code != 0 and stdout == "" and "cannot change hair_erase" in caplog.text
