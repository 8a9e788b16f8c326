"""Training augmentation for faces: a turn about the vertical axis (``--yaw-warp``), as in a three-quarter view."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from genderclass.config import MAX_YAW_WARP, TrainConfig  # noqa: E402
from genderclass.training.augment import (  # noqa: E402
    FaceAugment,
    random_affine,
    train_augment,
    turn_about_vertical_axis,
)
from genderclass.training.lightning_module import GenderModule  # noqa: E402

SIZE = 64


def _square() -> torch.Tensor:
    """A white square (columns and rows 16-47) on black: the face's outline, one sample."""
    x = torch.zeros(1, 1, SIZE, SIZE)
    x[..., 16:48, 16:48] = 255.0
    return x


def _turned(x: torch.Tensor, degrees: float) -> torch.Tensor:
    grid = F.affine_grid(torch.eye(2, 3).unsqueeze(0), list(x.shape), align_corners=False)
    grid = turn_about_vertical_axis(grid, torch.tensor([degrees]))
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _columns_with_square(x: torch.Tensor) -> torch.Tensor:
    return (x[0, 0] > 127).any(dim=0).nonzero().flatten()


def _height_of_column(x: torch.Tensor, column: int) -> int:
    return int((x[0, 0, :, column] > 127).sum())


def test_no_turn_samples_where_the_grid_did():
    grid = torch.rand(3, 5, 7, 2) * 2 - 1
    assert torch.allclose(turn_about_vertical_axis(grid, torch.zeros(3)), grid, atol=1e-6)


def test_a_turned_face_narrows_and_its_near_side_grows():
    turned = _turned(_square(), 40.0)
    columns = _columns_with_square(turned)
    width = int(columns[-1] - columns[0] + 1)
    assert 20 <= width <= 28  # 32 px wide facing the camera; about 32 x cos(40) = 24.5 turned
    left, right = _height_of_column(turned, int(columns[0]) + 1), _height_of_column(turned, int(columns[-1]) - 1)
    assert abs(left - right) >= 6  # one edge nearer the camera than the other
    assert max(left, right) > 32 > min(left, right)
    assert turned[0, 0, SIZE // 2, SIZE // 2] > 127  # the centre line stays where it was


def test_turning_the_other_way_mirrors_the_result():
    square = _square()
    square[..., 20:28, 20:28] = 0.0  # not symmetric on its own
    left = _turned(square, 30.0)
    right_of_mirror = _turned(square.flip(-1), -30.0).flip(-1)
    assert torch.allclose(left, right_of_mirror, atol=1e-3)


def test_the_largest_turn_never_folds_the_crop_over():
    """FaceAugment's widest geometry (zoom 0.9, 12 degrees, a 0.06 shift, mirrored or not) turned by
    the largest allowed yaw: along every row the source moves one way only (the plane never folds)."""
    zoom, angle, shift = 0.9, math.radians(12), 0.12
    thetas = []
    for sign in (1, -1):
        for mirror in (1, -1):
            cos, sin = math.cos(sign * angle) / zoom, math.sin(sign * angle) / zoom
            thetas.append([[cos * mirror, -sin, shift * sign], [sin * mirror, cos, shift]])
    grid = F.affine_grid(torch.tensor(thetas), [4, 1, 128, 128], align_corners=False).repeat(2, 1, 1, 1)
    yaw = torch.tensor([MAX_YAW_WARP] * 4 + [-MAX_YAW_WARP] * 4)
    source_x = turn_about_vertical_axis(grid, yaw)[..., 0]
    steps = source_x.diff(dim=2)
    assert torch.isfinite(source_x).all()
    assert ((steps > 0).all(dim=2) | (steps < 0).all(dim=2)).all()


def test_random_affine_turns_each_sample_its_own_way():
    torch.manual_seed(0)
    x = _square().repeat(16, 1, 1, 1)
    turned = random_affine(x, degrees=0, translate=0, scale=(1, 1), flip=False, fill=0.0, yaw=45.0)
    widths = {int((turned[i, 0] > 127).any(dim=0).sum()) for i in range(16)}
    assert len(widths) >= 4 and min(widths) < 28
    still = random_affine(x, degrees=0, translate=0, scale=(1, 1), flip=False, fill=0.0)
    assert torch.allclose(still, x, atol=1e-3)  # yaw=0 (the default): the square as it was


def test_the_setting_reaches_the_face_augmentation_and_is_checked():
    cfg = TrainConfig.from_dict(TrainConfig.for_modality("face", yaw_warp=30.0).to_dict())
    assert cfg.yaw_warp == 30.0 and TrainConfig.from_dict({}).yaw_warp == 0.0  # older configs: off
    augment = train_augment(cfg.preprocess, cfg.outside_fill, cfg.augment, cfg.hair_erase, cfg.yaw_warp)
    assert isinstance(augment, FaceAugment) and augment.yaw_warp == 30.0
    assert GenderModule(cfg.to_dict()).augment.yaw_warp == 30.0  # what training uses
    out = augment(torch.rand(4, 3, 32, 32) * 255)
    assert out.shape == (4, 3, 32, 32) and math.isfinite(float(out.sum()))
    with pytest.raises(ValueError, match="faces only"):
        TrainConfig.for_modality("fingerprint", yaw_warp=10.0)
    with pytest.raises(ValueError, match="do not combine"):  # teacher views are drawn before training, unturned
        TrainConfig(yaw_warp=20.0, teacher="t.onnx", teacher_views=2)
    with pytest.raises(ValueError, match="degrees"):
        TrainConfig(yaw_warp=MAX_YAW_WARP + 1)
