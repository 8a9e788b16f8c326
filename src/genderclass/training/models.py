"""Network architectures. Every model takes float32 NCHW pixels in [0, 255] and returns one logit
(positive = female); normalisation lives inside the network so the ONNX file carries it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision.models import mobilenet_v3_small, resnet18


class Normalize(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("scale", 1.0 / (255.0 * torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)))
        self.register_buffer(
            "shift",
            torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            / torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale - self.shift


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


def small_resnet(
    in_channels: int,
    width: float = 1.0,
    dropout: float = 0.2,
    blocks: Sequence[int] = (1, 2, 2, 1),
    stem_stride: int = 2,
) -> nn.Module:
    """A compact ResNet for 64-128 px inputs: stem, four stages, global pooling.

    ``stem_stride=1`` keeps full resolution in the first stage (4x the compute): fingerprint
    ridges are only 3-4 px apart at 96 px, and a stride-2 stem averages them away."""
    widths = [max(8, int(round(c * width))) for c in (32, 64, 128, 256)]
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, widths[0], 3, stem_stride, 1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    c_in = widths[0]
    for stage, (c_out, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            layers.append(BasicBlock(c_in, c_out, 2 if i == 0 and stage > 0 else 1))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, 1)]
    return nn.Sequential(*layers)


def _mobilenet(in_channels: int, width: float, dropout: float) -> nn.Module:
    net = mobilenet_v3_small(weights=None, width_mult=width, dropout=dropout)
    if in_channels != 3:
        first = net.features[0][0]
        net.features[0][0] = nn.Conv2d(in_channels, first.out_channels, 3, 2, 1, bias=False)
    hidden = 256
    net.classifier = nn.Sequential(
        nn.Linear(net.classifier[0].in_features, hidden), nn.Hardswish(), nn.Dropout(dropout), nn.Linear(hidden, 1)
    )
    return net


def _resnet18(in_channels: int, width: float, dropout: float) -> nn.Module:
    net = resnet18(weights=None, num_classes=1)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    net.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, 1))
    return net


ARCHITECTURES: dict[str, Callable[[int, float, float], nn.Module]] = {
    "small_resnet": lambda c, w, d: small_resnet(c, w, d),
    "small_resnet_s1": lambda c, w, d: small_resnet(c, w, d, stem_stride=1),
    "mobilenet_v3_small": _mobilenet,
    "resnet18": _resnet18,
}


class GenderNet(nn.Module):
    """Normalisation + backbone; outputs one logit per image (shape N)."""

    def __init__(
        self,
        arch: str,
        in_channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        width: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
        self.normalize = Normalize(mean, std)
        self.backbone = ARCHITECTURES[arch](in_channels, width, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x)).squeeze(1)
