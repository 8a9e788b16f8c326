"""Train / eval transform presets, one module (torchvision v2). Inputs are uint8 CxHxW tensors
straight from the preprocessing cache; outputs are float32 pixels in [0, 255] (the network
normalises)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from ..config import PreprocessConfig


class RandomCutLines(torch.nn.Module):
    """Draw 1-3 straight background-coloured lines across the image (imitates z-cut damage)."""

    def __init__(self, p: float = 0.3, max_lines: int = 3, fill: float = 255.0) -> None:
        super().__init__()
        self.p, self.max_lines, self.fill = p, max_lines, fill

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        image = image.clone()
        _, height, width = image.shape
        ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        for _ in range(int(torch.randint(1, self.max_lines + 1, ()))):
            angle = torch.rand(()) * torch.pi
            cx, cy = torch.rand(()) * width, torch.rand(()) * height
            thickness = 1.0 + torch.rand(()) * 3.0
            distance = (xs - cx) * torch.sin(angle) - (ys - cy) * torch.cos(angle)
            image[:, distance.abs() < thickness / 2] = self.fill
        return image


class RandomGamma(torch.nn.Module):
    def __init__(self, low: float = 0.7, high: float = 1.4, p: float = 0.5) -> None:
        super().__init__()
        self.low, self.high, self.p = low, high, p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        gamma = self.low + torch.rand(()) * (self.high - self.low)
        return (255.0 * (image / 255.0).clamp(0, 1) ** gamma).to(image.dtype)


class AddGaussianNoise(torch.nn.Module):
    def __init__(self, sigma: float = 8.0, p: float = 0.3) -> None:
        super().__init__()
        self.sigma, self.p = sigma, p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        return (image + torch.randn_like(image) * self.sigma * torch.rand(())).clamp(0, 255)


def face_train(cfg: PreprocessConfig) -> v2.Transform:
    size = cfg.input_size
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.RandomRotation(12, fill=127)], p=0.5),
            v2.RandomResizedCrop(size, scale=(0.72, 1.0), ratio=(0.88, 1.12), antialias=True),
            v2.ColorJitter(brightness=0.35, contrast=0.35, saturation=0.3, hue=0.03),
            v2.RandomGrayscale(p=0.1),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.6))], p=0.2),
            v2.ToDtype(torch.float32, scale=False),
            v2.RandomErasing(p=0.15, scale=(0.02, 0.12), value=127.0),
        ]
    )


def fingerprint_train(cfg: PreprocessConfig) -> v2.Transform:
    size = cfg.input_size
    return v2.Compose(
        [
            v2.RandomAffine(degrees=25, translate=(0.1, 0.1), scale=(0.85, 1.15), fill=255),
            v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
            v2.ToDtype(torch.float32, scale=False),
            RandomGamma(),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.2))], p=0.25),
            AddGaussianNoise(),
            RandomCutLines(p=0.3),
            v2.RandomErasing(p=0.3, scale=(0.02, 0.15), value=255.0),
            v2.RandomErasing(p=0.2, scale=(0.02, 0.1), value=0.0),
        ]
    )


def eval_transform(cfg: PreprocessConfig) -> v2.Transform:
    return v2.ToDtype(torch.float32, scale=False)


def train_transform(cfg: PreprocessConfig) -> v2.Transform:
    return fingerprint_train(cfg) if cfg.modality == "fingerprint" else face_train(cfg)
