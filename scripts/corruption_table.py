"""Accuracy of a face model under held-out image corruptions: a guard that must not regress.

    python scripts/corruption_table.py                                  # bundled face model, 800 test chips
    python scripts/corruption_table.py --model runs/new/export/face.onnx --limit 0   # the whole test split

Each labelled chip is corrupted, then cropped exactly as `genderclass evaluate --crop chip` crops it
(padded, detected, aligned), and classified; one row per corruption, with a 95 % Wilson interval and
the change from the clean images. The corruptions (none is used in training as such): downscaled to
40 and 64 px, JPEG quality 15, Gaussian blur, grayscale, darkened, side light, rotated 25 degrees,
a dark occluding patch, a tight zoomed crop.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from genderclass.data.readers import read_dataset
from genderclass.data.split import select_listed
from genderclass.evaluation.metrics import wilson_interval
from genderclass.imageio import load_image
from genderclass.inference.classifier import GenderClassifier
from genderclass.preprocess import crop_chip
from genderclass.progress import progress


def _resized(size: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda rgb, rng: cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def _jpeg(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 15])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _side_light(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(0.35, 1.25, rgb.shape[1])[None, :, None]
    ramp = ramp if rng.random() < 0.5 else ramp[:, ::-1]
    return np.clip(rgb * ramp, 0, 255).astype(np.uint8)


def _rotated(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = rgb.shape[:2]
    angle = 25.0 if rng.random() < 0.5 else -25.0
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def _patch(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = rgb.copy()
    height, width = rgb.shape[:2]
    side = int(0.3 * min(height, width))
    y, x = rng.integers(0, height - side), rng.integers(0, width - side)
    out[y : y + side, x : x + side] = 20
    return out


def _tight(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = rgb.shape[:2]
    dy, dx = int(0.15 * height), int(0.15 * width)
    return cv2.resize(rgb[dy : height - dy, dx : width - dx], (width, height), interpolation=cv2.INTER_LINEAR)


CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "clean": lambda rgb, rng: rgb,
    "downscaled to 40 px": _resized(40),
    "downscaled to 64 px": _resized(64),
    "JPEG quality 15": _jpeg,
    "blur (sigma 2)": lambda rgb, rng: cv2.GaussianBlur(rgb, (0, 0), 2.0),
    "grayscale": lambda rgb, rng: cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB),
    "darkened (x0.35)": lambda rgb, rng: (rgb * 0.35).astype(np.uint8),
    "side light": _side_light,
    "rotated 25 degrees": _rotated,
    "dark patch (30 % side)": _patch,
    "tight zoomed crop (70 %)": _tight,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="face model (default: the bundled one)")
    parser.add_argument("--data", default="../shared/datasets/utkface")
    parser.add_argument("--format", default="utkface")
    parser.add_argument("--split-file", default="src/genderclass/models/face.test_files.txt")
    parser.add_argument("--limit", type=int, default=800, help="chips drawn at random from the split; 0 = all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    clf = GenderClassifier.load(args.model, modality="face")
    samples, _ = select_listed(read_dataset(args.data, args.format).samples,
                               Path(args.split_file).read_text().splitlines(), args.data)  # fmt: skip
    if args.limit and args.limit < len(samples):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(samples), args.limit, replace=False))
        samples = [samples[i] for i in keep]
    labels = np.array([s.label for s in samples])
    crops: dict[str, list[np.ndarray]] = {name: [] for name in CORRUPTIONS}
    for index, sample in enumerate(progress(samples, desc="corrupt + crop")):
        rgb = load_image(sample.path)
        for name, corrupt in CORRUPTIONS.items():
            rng = np.random.default_rng([args.seed, index])  # the same draw for a chip whatever else runs
            crops[name].append(crop_chip(corrupt(rgb, rng), clf.preprocess, clf.detector)[0].pixels)
    clean = None
    for name, images in crops.items():
        p = clf.probability(clf.logits(images))
        right = int(((p >= clf.threshold).astype(int) == labels).sum())
        accuracy = right / len(labels)
        clean = accuracy if clean is None else clean
        low, high = wilson_interval(right, len(labels))
        print(json.dumps({"corruption": name, "n": len(labels), "accuracy": round(accuracy, 4),
                          "ci95": [round(low, 4), round(high, 4)], "change": round(accuracy - clean, 4)}))  # fmt: skip


if __name__ == "__main__":
    main()
