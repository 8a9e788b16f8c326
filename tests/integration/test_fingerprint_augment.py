"""Fingerprint training augmentation: 'exact' geometry keeps the ridges as they are."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from genderclass.training.augment import FingerprintAugment, random_shift, train_augment  # noqa: E402


def _ridges(n: int = 64, size: int = 96, period: float = 3.5) -> torch.Tensor:
    """Gray prints reduced to their main cue: a grating with a 3.5 px ridge period, random angle."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    angle = torch.rand(n, 1, 1) * math.pi
    phase = (xx * torch.cos(angle) + yy * torch.sin(angle)) * 2 * math.pi / period
    return (127.5 + 100 * torch.sin(phase)).unsqueeze(1)


def _ridge_band_power(x: torch.Tensor) -> float:
    """Mean spectral power at 0.25-0.35 cycles per pixel in the central 64 x 64 pixels."""
    centre = x[:, 0, 16:80, 16:80]
    power = torch.fft.fft2(centre - centre.mean(dim=(1, 2), keepdim=True)).abs() ** 2
    f = torch.fft.fftfreq(64)
    radius = (f[:, None] ** 2 + f[None] ** 2).sqrt()
    return float(power[:, (radius >= 0.25) & (radius < 0.35)].mean())


def test_random_shift_moves_whole_pixels_and_mirrors():
    torch.manual_seed(0)
    x = torch.arange(6 * 2 * 10 * 10, dtype=torch.float32).view(6, 2, 10, 10)
    out = random_shift(x, max_shift=3, flip=True, fill=-1.0)
    assert out.shape == x.shape
    for sample, original in zip(out, x, strict=True):
        padded = torch.nn.functional.pad(original, (3, 3, 3, 3), value=-1.0)
        matches = [
            (dy, dx, mirror)
            for dy in range(7)
            for dx in range(7)
            for mirror in (False, True)
            if torch.equal(
                sample,
                padded[:, dy : dy + 10, dx : dx + 10].flip(-1) if mirror else padded[:, dy : dy + 10, dx : dx + 10],
            )
        ]
        assert len(matches) == 1  # every output is one exact shift (and maybe mirror) of its input
    assert torch.equal(random_shift(x, max_shift=0, flip=False, fill=-1.0), x)


def test_exact_geometry_keeps_the_ridge_band_that_affine_loses():
    prints = _ridges()
    before = _ridge_band_power(prints)
    torch.manual_seed(1)
    exact = _ridge_band_power(FingerprintAugment("exact")(prints.clone())) / before
    torch.manual_seed(1)
    affine = _ridge_band_power(FingerprintAugment("affine")(prints.clone())) / before
    assert exact > 0.8  # only occlusion patches, cut lines and contrast change remove some
    assert affine < 0.7  # bilinear resampling and blur weaken the 3.5 px ridges
    assert exact > affine + 0.2


def test_train_augment_picks_the_geometry():
    from genderclass.config import PreprocessConfig

    fingerprint = PreprocessConfig.for_modality("fingerprint")
    assert train_augment(fingerprint, geometry="exact").geometry == "exact"
    assert train_augment(fingerprint).geometry == "affine"
    with pytest.raises(ValueError, match="unknown fingerprint augmentation"):
        FingerprintAugment("wobbly")
