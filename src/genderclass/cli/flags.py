"""Flags that several commands share, declared once."""

from __future__ import annotations

import argparse

from ..config import MODALITIES
from ..runtime import DEVICES


def add_modality_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--modality face|fingerprint`` (any case, as the API's field), with each command's own meaning."""
    parser.add_argument("--modality", type=str.lower, choices=MODALITIES, default=None, help=help_text)


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda``: where ONNX Runtime runs the networks."""
    parser.add_argument(
        "--device",
        type=str.lower,
        choices=DEVICES,
        default="cpu",
        help="where the networks run: cpu, or cuda through ONNX Runtime's CUDA execution provider "
        "(needs the onnxruntime-gpu package in place of onnxruntime; see docs/scale.md)",
    )
