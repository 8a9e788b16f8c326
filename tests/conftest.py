"""Shared fixtures: repository paths, tiny untrained ONNX models for both modalities, image writers.

The tiny models are built once per session from ``GenderNet("small_resnet", width=0.25)`` with a
fixed seed and exported with the project's own ``export_onnx``; nothing is trained. Tests that need
them are skipped when the ``train`` extra (torch) is not installed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pytest

# One OpenMP thread for the face detector (yuface) and torch: on a small, busy machine spinning
# OpenMP threads make detection ~10x slower. Set before either library is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS_DIR = REPO_ROOT / ".." / "shared" / "datasets"

TINY_TEMPERATURE = 1.5
TINY_MIN_CONFIDENCE = 0.6
TINY_FINGERPRINT_THRESHOLD = 0.45


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return DATASETS_DIR


def _calibration_batch(channels: int, size: int, n: int, seed: int):
    """Varied images (flat colour + noise) so the untrained net's BN statistics and logits spread."""
    import torch

    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, 1, 1, generator=g) * 255
    noise = torch.rand(n, channels, size, size, generator=g) * 255
    return base * 0.7 + noise * 0.3


def build_tiny_model(modality: str, out_dir: Path, input_size: int = 32) -> Path:
    """Export an untrained GenderNet + metadata JSON shaped like ``export_run``'s; return the ONNX path."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from genderclass import __version__
    from genderclass.config import LABELS, PreprocessConfig, TrainConfig
    from genderclass.training.ensemble import FlipAveraged
    from genderclass.training.export import export_onnx
    from genderclass.training.models import GenderNet

    torch.manual_seed(0)
    pre = PreprocessConfig.for_modality(modality, input_size=input_size)
    cfg = TrainConfig(
        modality=modality,
        format="socofing" if modality == "fingerprint" else "utkface",
        arch="small_resnet",
        width=0.25,
        preprocess=pre,
    )
    net = GenderNet("small_resnet", pre.channels, pre.mean, pre.std, width=0.25)
    # Give BatchNorm realistic running statistics, then rescale the last layer so logits on varied
    # inputs have mean ~0 and std ~1.5: some images come out male, some female, few very confident.
    batch = _calibration_batch(pre.channels, input_size, 64, seed=1)
    with torch.no_grad():
        net.train()
        for _ in range(3):
            net(batch)
        net.eval()
        logits = net(batch)
        last = net.backbone[-1]
        scale = 1.5 / max(float(logits.std()), 1e-6)
        last.weight.mul_(scale)
        last.bias.mul_(scale)
        last.bias.sub_(float(net(batch).mean()))
    model = FlipAveraged(net) if modality == "face" else net
    model.eval()

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"tiny_{modality}.onnx"
    export_onnx(model, cfg, onnx_path)
    threshold = TINY_FINGERPRINT_THRESHOLD if modality == "fingerprint" else 0.5
    metadata = {
        "name": f"tiny_{modality}",
        "modality": modality,
        "format_version": 1,
        "labels": list(LABELS),
        "positive_label": LABELS[1],
        "preprocess": pre.to_dict(),
        "input": {"name": "pixels", "layout": "NCHW", "dtype": "float32", "range": [0, 255]},
        "output": {"name": "logit", "meaning": "log-odds of 'female' before temperature scaling"},
        "temperature": TINY_TEMPERATURE,
        "threshold": threshold,
        "min_confidence": TINY_MIN_CONFIDENCE,
        "confidence_scale": "threshold-centred",
        "architecture": "small_resnet",
        "flip_tta": modality == "face",
        "training": {
            "command": "untrained test fixture",
            "data": "",
            "format": cfg.format,
            "data_hash": "0" * 16,
            "split_sizes": {"train": 0, "val": 0, "test": 0, "dropped": 0},
            "n_conflicting_groups": 0,
            "best_epoch": None,
            "config": cfg.to_dict(),
            "data_license": "none (untrained)",
        },
        "metrics": {},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "software": {"genderclass": __version__, "torch": torch.__version__},
    }
    onnx_path.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    return onnx_path


@pytest.fixture(scope="session")
def tiny_face_model(tmp_path_factory) -> Path:
    """Untrained face model (RGB, 32 px, detection on, flip-averaged), ONNX path; JSON next to it."""
    return build_tiny_model("face", tmp_path_factory.mktemp("tiny_face"))


@pytest.fixture(scope="session")
def tiny_fingerprint_model(tmp_path_factory) -> Path:
    """Untrained fingerprint model (gray, 32 px, threshold 0.45), ONNX path; JSON next to it."""
    return build_tiny_model("fingerprint", tmp_path_factory.mktemp("tiny_fingerprint"))


def save_image(path: Path, array: np.ndarray, **save_kwargs) -> Path:
    """Write an RGB/RGBA/gray uint8 array with PIL (format from the suffix)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)
    return path


@pytest.fixture
def write_image():
    return save_image


def colour_image(width: int, height: int, colour: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A flat colour with mild noise (RGB uint8)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 8, (height, width, 3))
    return np.clip(np.array(colour, dtype=np.float64) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def make_colour_image():
    return colour_image
