"""Flags that several commands share, declared once."""

from __future__ import annotations

import argparse

from ..runtime import DEVICES


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
