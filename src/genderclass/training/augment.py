"""Batched training augmentation of faces and fingerprints, and the float conversion of every split.

Augmentation runs on whole batches (float N x C x H x W, pixels 0-255) with per-sample random
parameters, inside Lightning's ``on_after_batch_transfer`` hook. Measured on the 2-core CPU this
project targets, per-sample torchvision v2 transforms cost ~10 ms per 96 px face (hue jitter alone
~24 ms), i.e. more than the network's own training step; the batched version costs ~0.1 ms per
image. Geometry is one ``affine_grid``/``grid_sample`` call (flip, rotation, scale, translation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from ..config import AUGMENT_GEOMETRIES, PreprocessConfig
from ..faces.crop import HairRegion, hair_region

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=device)


def _chance(n: int, p: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) < p


YAW_DEPTH = 3.0  # camera distance in half-widths of the crop: a face filling a phone photo held at arm's length


def turn_about_vertical_axis(grid: torch.Tensor, yaw_degrees: torch.Tensor) -> torch.Tensor:
    """Sampling ``grid`` (N x H x W x 2, normalised x, y) composed with a turn of the image plane by
    ``yaw_degrees`` (one per sample) about its vertical centre line, seen by a pinhole camera
    ``YAW_DEPTH`` half-widths away: the side turned away narrows and shrinks, the near side grows,
    as a face does in a three-quarter view (a plane's perspective; the nose's depth is not modelled)."""
    angle = yaw_degrees.view(-1, 1, 1) * math.pi / 180.0
    cos, sin = torch.cos(angle), torch.sin(angle) / YAW_DEPTH
    x, y = grid[..., 0], grid[..., 1]
    depth = cos - x * sin  # > 0 for |x| < YAW_DEPTH / tan(angle): every turn up to 60 degrees on a zoomed crop
    return torch.stack([x / depth, y * cos / depth], dim=-1)


def random_affine(
    x: torch.Tensor,
    degrees: float,
    translate: float,
    scale: tuple[float, float],
    flip: bool,
    fill: float | None,
    yaw: float = 0.0,
) -> torch.Tensor:
    """Per-sample flip/rotation/zoom/shift, and with ``yaw`` a turn about the vertical axis of up to
    that many degrees either way (:func:`turn_about_vertical_axis`); ``fill=None`` repeats the
    border, else a constant."""
    n, device = x.shape[0], x.device
    angle = _uniform(n, -degrees, degrees, device) * math.pi / 180.0
    zoom = _uniform(n, *scale, device)
    mirror = torch.where(_chance(n, 0.5 if flip else 0.0, device), -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, _uniform(n, -translate, translate, device) * 2], dim=1),
            torch.stack([sin * mirror, cos, _uniform(n, -translate, translate, device) * 2], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if yaw:
        grid = turn_about_vertical_axis(grid, _uniform(n, -yaw, yaw, device))
    if fill is None:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def random_shift(x: torch.Tensor, max_shift: int, flip: bool, fill: float) -> torch.Tensor:
    """Per-sample mirror and whole-pixel shift (up to ``max_shift`` px each way; ``fill`` where the
    image moved away): every output pixel is an input pixel, nothing is resampled."""
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=fill)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (n, 1), device=x.device) for _ in range(2))
    rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    shifted = padded[batch, torch.arange(c, device=x.device).view(1, c, 1, 1), rows, cols]
    mirror = _chance(n, 0.5 if flip else 0.0, x.device).view(n, 1, 1, 1)
    return torch.where(mirror, shifted.flip(-1), shifted)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(_GRAY_WEIGHTS, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """Per-sample brightness, contrast (around the mean gray) and saturation, fused into few passes."""
    n, device = x.shape[0], x.device
    b = _uniform(n, 1 - brightness, 1 + brightness, device).view(n, 1, 1, 1)
    c = _uniform(n, 1 - contrast, 1 + contrast, device).view(n, 1, 1, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = torch.addcmul(mean * b * (1 - c), x, b * c)
    if x.shape[1] == 3 and saturation > 0:
        s = _uniform(n, 1 - saturation, 1 + saturation, device).view(n, 1, 1, 1)
        x = torch.addcmul(_gray(x) * (1 - s), x, s)
    return x.clamp_(0, 255)


def random_grayscale(x: torch.Tensor, p: float) -> torch.Tensor:
    chosen = torch.nonzero(_chance(x.shape[0], p, x.device)).flatten()
    if x.shape[1] == 1 or chosen.numel() == 0:
        return x
    x = x.clone()
    x[chosen] = _gray(x[chosen]).expand(-1, x.shape[1], -1, -1)
    return x


def random_blur(x: torch.Tensor, p: float, sigma: tuple[float, float]) -> torch.Tensor:
    """Gaussian blur with one random sigma for the chosen samples."""
    mask = _chance(x.shape[0], p, x.device)
    if not mask.any():
        return x
    s = float(_uniform(1, *sigma, x.device))
    radius = max(1, math.ceil(2 * s))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(taps**2) / (2 * s * s))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    blurred = x[mask]
    blurred = F.conv2d(
        F.pad(blurred, (radius, radius, 0, 0), mode="replicate"),
        kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
        groups=channels,
    )
    blurred = F.conv2d(
        F.pad(blurred, (0, 0, radius, radius), mode="replicate"),
        kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
        groups=channels,
    )
    x = x.clone()
    x[mask] = blurred
    return x


def random_erasing(x: torch.Tensor, p: float, area: tuple[float, float], value: float) -> torch.Tensor:
    """Fill one random rectangle per chosen sample with ``value`` (occlusion)."""
    n, _, height, width = x.shape
    chosen = torch.nonzero(_chance(n, p, x.device)).flatten().tolist()
    if not chosen:
        return x
    x = x.clone()
    for i in chosen:
        frac = float(_uniform(1, *area, x.device))
        aspect = math.exp(float(_uniform(1, math.log(0.4), math.log(2.5), x.device)))
        h = min(height, max(1, round(math.sqrt(frac * aspect) * height)))
        w = min(width, max(1, round(math.sqrt(frac / aspect) * width)))
        top = int(torch.randint(0, height - h + 1, ()))
        left = int(torch.randint(0, width - w + 1, ()))
        x[i, :, top : top + h, left : left + w] = value
    return x


def random_cut_lines(x: torch.Tensor, p: float, value: float = 255.0, max_thickness: float = 4.0) -> torch.Tensor:
    """A straight background-coloured line through chosen samples (imitates z-cut damage)."""
    n, _, height, width = x.shape
    device = x.device
    chosen = _chance(n, p, device).view(n, 1, 1)
    angle = torch.rand(n, device=device) * math.pi
    cx, cy = torch.rand(n, device=device) * width, torch.rand(n, device=device) * height
    thickness = _uniform(n, 1.0, max_thickness, device)
    ys = torch.arange(height, device=device, dtype=x.dtype).view(1, -1, 1)
    xs = torch.arange(width, device=device, dtype=x.dtype).view(1, 1, -1)
    distance = (xs - cx.view(n, 1, 1)) * torch.sin(angle).view(n, 1, 1) - (ys - cy.view(n, 1, 1)) * torch.cos(
        angle
    ).view(n, 1, 1)
    on_line = distance.abs() < thickness.view(n, 1, 1) / 2
    return torch.where((on_line & chosen).unsqueeze(1), torch.full_like(x, value), x)


def random_gamma(x: torch.Tensor, p: float, low: float = 0.7, high: float = 1.4) -> torch.Tensor:
    n = x.shape[0]
    gamma = torch.where(_chance(n, p, x.device), _uniform(n, low, high, x.device), torch.ones(n, device=x.device))
    return 255.0 * (x / 255.0).clamp(0, 1) ** gamma.view(n, 1, 1, 1)


def random_noise(x: torch.Tensor, p: float, sigma: float = 8.0) -> torch.Tensor:
    n = x.shape[0]
    strength = torch.where(_chance(n, p, x.device), _uniform(n, 0, sigma, x.device), torch.zeros(n, device=x.device))
    return (x + torch.randn_like(x) * strength.view(n, 1, 1, 1)).clamp(0, 255)


def _other_content(x: torch.Tensor, noise: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Per sample, one of three stand-ins for its pixels: another sample's in the batch, a flat random
    colour, or that colour plus ``noise(x)`` (noise the shape of ``x``)."""
    n, device = x.shape[0], x.device
    kind = torch.randint(0, 3, (n, 1, 1, 1), device=device)
    flat = torch.rand(n, x.shape[1], 1, 1, device=device).expand_as(x) * 255.0
    noisy = (flat + noise(x)).clamp(0, 255)
    other = x[torch.randperm(n, device=device)]
    return torch.where(kind == 0, other, torch.where(kind == 1, flat, noisy))


def fill_outside(x: torch.Tensor, outside: torch.Tensor, p: float, noise: float = 30.0) -> torch.Tensor:
    """In a share ``p`` of the samples, replace the pixels marked ``outside`` (N x 1 x H x W, 0-1:
    beyond the chip's edge, where the crop repeats the edge) with other content: the same pixels of
    another sample in the batch, a flat random colour, or that colour with noise (one per sample)."""
    n, device = x.shape[0], x.device
    chosen = _chance(n, p, device)
    if not chosen.any():
        return x
    fill = _other_content(x, lambda like: torch.randn_like(like) * noise)
    alpha = outside.clamp(0, 1) * chosen.view(n, 1, 1, 1)
    return torch.lerp(x, fill, alpha)


def smooth_noise(x: torch.Tensor, strength: float, cells: int = 6) -> torch.Tensor:
    """Noise the shape of ``x`` (standard deviation about ``strength``), blurred into blobs about a
    ``cells``-th of the image across (bicubic upsampling of a coarse grid): texture, not grain."""
    n, channels, height, width = x.shape
    coarse = torch.randn(n, channels, cells, cells, device=x.device, dtype=x.dtype) * strength
    return F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)


def hair_mask(x: torch.Tensor, region: HairRegion, sides: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W bool: the rows above ``region.brow``, and for the samples marked ``sides`` also the
    columns beyond the face outline down to ``region.ears`` (pixel row r lies at r / H of the crop)."""
    n, _, height, width = x.shape
    rows = torch.arange(height, device=x.device).view(1, 1, height, 1) / height
    cols = torch.arange(width, device=x.device).view(1, 1, 1, width) / width
    beside = (rows < region.ears) & ((cols < region.side) | (cols >= 1 - region.side))
    return (rows < region.brow) | (beside & sides.view(n, 1, 1, 1))


def erase_hair(x: torch.Tensor, p: float, region: HairRegion, sides: float = 0.5, noise: float = 40.0) -> torch.Tensor:
    """In a share ``p`` of the samples (aligned face crops, ``region`` from :func:`.hair_region`),
    replace the hair with other content so that the network cannot read it: the band above the brows
    across the whole width, and in a share ``sides`` of those also the sides down to the ear lobes
    (the outline of a scarf, hijab or cap). The content is the same band of another sample in the
    batch, a flat random colour, or that colour with blurred noise (one per sample)."""
    n, device = x.shape[0], x.device
    chosen = _chance(n, p, device)
    if not chosen.any():
        return x
    mask = hair_mask(x, region, _chance(n, sides, device)) & chosen.view(n, 1, 1, 1)
    return torch.where(mask, _other_content(x, lambda like: smooth_noise(like, noise)), x)


class FaceAugment(nn.Module):
    """Hair erased (``hair_erase``, on the aligned crop, before any geometry), flip, rotation,
    zoom/shift, a turn of up to ``yaw_warp`` degrees about the vertical axis, other content beyond
    the chip's edge, brightness/contrast/saturation, grayscale, blur, occlusion. A batch with one channel more than ``channels`` carries the beyond-the-edge mask there
    (``CachedImages``); it moves with the pixels and is removed. ``margin``: the crop's
    (``PreprocessConfig.margin``), which places the brows."""

    def __init__(
        self,
        channels: int = 3,
        outside_fill: float = 0.0,
        hair_erase: float = 0.0,
        margin: float = PreprocessConfig.margin,
        yaw_warp: float = 0.0,
    ) -> None:
        super().__init__()
        self.channels, self.outside_fill = channels, outside_fill
        self.hair_erase, self.hair = hair_erase, hair_region(margin)
        self.yaw_warp = yaw_warp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hair_erase > 0:
            pixels, mask = x[:, : self.channels], x[:, self.channels :]
            x = torch.cat([erase_hair(pixels, self.hair_erase, self.hair), mask], dim=1)
        x = random_affine(x, degrees=12, translate=0.06, scale=(0.9, 1.2), flip=True, fill=None, yaw=self.yaw_warp)
        if x.shape[1] > self.channels:
            x, outside = x[:, : self.channels], x[:, self.channels :] / 255.0
            x = fill_outside(x, outside, self.outside_fill)
        x = color_jitter(x, brightness=0.35, contrast=0.35, saturation=0.3)
        x = random_grayscale(x, p=0.1)
        x = random_blur(x, p=0.2, sigma=(0.4, 1.6))
        return random_erasing(x, p=0.15, area=(0.02, 0.12), value=127.0)


class FingerprintAugment(nn.Module):
    """Mirror, rotation, shift, contrast/gamma, light blur/noise, and damage like the dataset's
    alterations: white occlusion patches (obliteration), cut lines (z-cut), dark smudges.
    Zoom and blur stay small: ridge spacing (density) is the main gender cue in a print, and
    rescaling or smoothing it would teach the network to ignore it. ``geometry="exact"`` keeps
    only mirror and whole-pixel shifts and drops blur and noise (see ``TrainConfig.augment``)."""

    def __init__(self, geometry: str = "affine") -> None:
        super().__init__()
        if geometry not in AUGMENT_GEOMETRIES:
            raise ValueError(
                f"unknown fingerprint augmentation {geometry!r}; expected one of {', '.join(AUGMENT_GEOMETRIES)}"
            )
        self.geometry = geometry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.geometry == "exact":
            x = random_shift(x, max_shift=round(0.08 * x.shape[-1]), flip=True, fill=255.0)
        else:
            x = random_affine(x, degrees=20, translate=0.08, scale=(0.96, 1.04), flip=True, fill=255.0)
        x = color_jitter(x, brightness=0.2, contrast=0.3, saturation=0.0)
        x = random_gamma(x, p=0.5)
        if self.geometry == "affine":
            x = random_blur(x, p=0.1, sigma=(0.3, 0.7))
            x = random_noise(x, p=0.3)
        x = random_cut_lines(x, p=0.3)
        x = random_erasing(x, p=0.3, area=(0.02, 0.15), value=255.0)
        return random_erasing(x, p=0.2, area=(0.02, 0.1), value=0.0)


def train_augment(
    cfg: PreprocessConfig,
    outside_fill: float = 0.0,
    geometry: str = "affine",
    hair_erase: float = 0.0,
    yaw_warp: float = 0.0,
) -> nn.Module:
    if cfg.modality == "fingerprint":
        return FingerprintAugment(geometry)
    return FaceAugment(cfg.channels, outside_fill, hair_erase, cfg.margin, yaw_warp)


def to_float() -> v2.Transform:
    """Per-sample transform for every split: uint8 -> float32 pixels (0-255)."""
    return v2.ToDtype(torch.float32, scale=False)
