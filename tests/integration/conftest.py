"""Synthetic labelled datasets and a helper to run the CLI in-process for the end-to-end tests.

The classes differ visibly (faces: blue-ish vs red-ish tint; prints: coarse vs fine ridges) and
every image carries its own random low-frequency pattern, so no two images are perceptual-hash
near-duplicates unless a test makes them so on purpose.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from genderclass.cli.main import main

# Small, fast training settings shared by the end-to-end tests (2 CPU cores, a model training
# in the background on the development machine).
TRAIN_ARGS = ["--input-size", "32", "--arch", "small_resnet", "--width", "0.25", "--batch-size", "16", "--threads", "1"]


def _run_cli(argv: list) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main([str(a) for a in argv])
    return code, buffer.getvalue()


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(argv)`` runs ``genderclass`` in this process and returns (exit code, stdout)."""
    return _run_cli


@pytest.fixture(scope="session")
def train_args() -> list[str]:
    return list(TRAIN_ARGS)


def synthetic_face(label: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    tint = np.array((210, 70, 50) if label else (40, 60, 200), dtype=np.float32)
    low = cv2.resize(rng.integers(0, 256, (6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    image = low[:, :, None] * 0.5 + tint * 0.5 + rng.normal(0, 6, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def synthetic_print(label: int, angle: float, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """Gray 'fingerprint' (R = G = B, alpha 255) with fine (female) or coarse (male) ridges."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    a = np.radians(angle)
    ridges = 0.5 + 0.5 * np.sin((0.45 if label else 0.22) * (xs * np.cos(a) + ys * np.sin(a)))
    low = cv2.resize(rng.random((4, 4)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    gray = (255 * np.clip(0.55 * ridges + 0.45 * low + rng.normal(0, 0.04, (size, size)), 0, 1)).astype(np.uint8)
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


@pytest.fixture(scope="session")
def make_face():
    """``make_face(label, rng)`` -> RGB uint8 synthetic face."""
    return synthetic_face


@pytest.fixture(scope="session")
def make_print():
    """``make_print(label, angle, rng)`` -> RGBA uint8 synthetic print."""
    return synthetic_print


@pytest.fixture(scope="session")
def face_folder_dataset(tmp_path_factory) -> Path:
    """ROOT/male and ROOT/female with 40 images each."""
    root = tmp_path_factory.mktemp("face_data")
    rng = np.random.default_rng(0)
    for label, name in ((0, "male"), (1, "female")):
        (root / name).mkdir()
        for i in range(40):
            Image.fromarray(synthetic_face(label, rng)).save(root / name / f"{name}_{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


FINGERS = ("thumb", "index", "middle", "ring")


@pytest.fixture(scope="session")
def fingerprint_csv_dataset(tmp_path_factory) -> dict:
    """CSV manifest (path,label,subject,finger) for 20 subjects x 4 prints (14 male, 6 female).

    Subjects m_dup_a and m_dup_b share one byte-identical print (they must stay together);
    m_conf (male) and f_conf (female) share one (contradictory labels: both are dropped).
    """
    root = tmp_path_factory.mktemp("fp_data")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    subjects = [(f"m{i:02d}", 0) for i in range(11)] + [(f"f{i:02d}", 1) for i in range(5)]
    subjects += [("m_dup_a", 0), ("m_dup_b", 0), ("m_conf", 0), ("f_conf", 1)]
    rows = []
    for subject, label in subjects:
        angle = rng.uniform(0, 180)
        for finger in FINGERS:
            path = images / f"{subject}_{finger}.png"
            Image.fromarray(synthetic_print(label, angle + rng.uniform(-10, 10), rng), "RGBA").save(path)
            rows.append({"path": f"images/{path.name}", "label": "female" if label else "male",
                         "subject": subject, "finger": finger})  # fmt: skip
    # byte-identical copies under another subject id
    (images / "m_dup_b_ring.png").write_bytes((images / "m_dup_a_thumb.png").read_bytes())
    (images / "f_conf_ring.png").write_bytes((images / "m_conf_thumb.png").read_bytes())
    manifest = root / "prints.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "subject", "finger"])
        writer.writeheader()
        writer.writerows(rows)
    return {"root": root, "manifest": manifest, "subjects": dict(subjects), "rows": rows}
