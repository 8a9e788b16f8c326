"""Accuracy of a model under held-out image corruptions: a guard that must not regress.

    python scripts/corruption_table.py                                  # bundled face model, 800 test chips
    python scripts/corruption_table.py --model runs/new/export/face.onnx --limit 0   # the whole test split
    python scripts/corruption_table.py --modality fingerprint --limit 0  # bundled print model, its test split

Each labelled image is corrupted, then cropped exactly as `genderclass evaluate --crop chip` crops it
(faces: padded, detected, aligned; prints: resized whole), and classified; one row per corruption,
with accuracy and its 95 % Wilson interval, balanced accuracy, ROC-AUC and the changes from the clean
images. None of the corruptions is used in training as such. Faces: downscaled to 40 and 64 px, JPEG
quality 15, Gaussian blur, grayscale, darkened, side light, rotated 25 degrees, a dark occluding
patch, a tight zoomed crop. Prints (beyond what training draws: rotations up to 20 degrees, light
blur, white patches up to 15 % of the area, cut lines up to 4 px): rotated 35 degrees, blur (sigma
1.5), downscaled to half and back, JPEG quality 20, low contrast, a partial print (the central 60 %),
a white patch of 30 % (obliteration), three 7 px cuts (z-cut), and both alterations together.
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
from genderclass.evaluation.metrics import binary_metrics
from genderclass.imageio import load_image
from genderclass.inference.classifier import GenderClassifier
from genderclass.preprocess import crop_chip
from genderclass.progress import progress


def _resized(size: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda rgb, rng: cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def _jpeg(rgb: np.ndarray, rng: np.random.Generator, quality: int = 15) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _side_light(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(0.35, 1.25, rgb.shape[1])[None, :, None]
    ramp = ramp if rng.random() < 0.5 else ramp[:, ::-1]
    return np.clip(rgb * ramp, 0, 255).astype(np.uint8)


def _rotated(degrees: float, **border: object) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Turned by ``degrees`` one way or the other (a coin per image); ``border``: cv2.warpAffine's."""

    def rotate(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = rgb.shape[:2]
        angle = degrees if rng.random() < 0.5 else -degrees
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        return cv2.warpAffine(rgb, matrix, (width, height), **border)

    return rotate


def _box(rgb: np.ndarray, rng: np.random.Generator, height: int, width: int, value: int) -> np.ndarray:
    """A copy with a ``height`` x ``width`` box of ``value`` at a random place."""
    out = rgb.copy()
    y, x = rng.integers(0, rgb.shape[0] - height), rng.integers(0, rgb.shape[1] - width)
    out[y : y + height, x : x + width] = value
    return out


def _patch(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = int(0.3 * min(rgb.shape[:2]))
    return _box(rgb, rng, side, side, 20)


def _tight(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = rgb.shape[:2]
    dy, dx = int(0.15 * height), int(0.15 * width)
    return cv2.resize(rgb[dy : height - dy, dx : width - dx], (width, height), interpolation=cv2.INTER_LINEAR)


def _half_resolution(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _partial(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.full_like(rgb, 255)
    height, width = rgb.shape[:2]
    dy, dx = int(0.2 * height), int(0.2 * width)
    out[dy : height - dy, dx : width - dx] = rgb[dy : height - dy, dx : width - dx]
    return out


def _obliterated(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = rgb.shape[:2]
    return _box(rgb, rng, int(np.sqrt(0.3) * height), int(np.sqrt(0.3) * width), 255)


def _z_cut(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = rgb.copy()
    height, width = rgb.shape[:2]
    for _ in range(3):
        start = (int(rng.integers(0, width)), 0)
        end = (int(rng.integers(0, width)), height - 1)
        cv2.line(out, start, end, (255, 255, 255), thickness=7)
    return out


FACE_CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "clean": lambda rgb, rng: rgb,
    "downscaled to 40 px": _resized(40),
    "downscaled to 64 px": _resized(64),
    "JPEG quality 15": _jpeg,
    "blur (sigma 2)": lambda rgb, rng: cv2.GaussianBlur(rgb, (0, 0), 2.0),
    "grayscale": lambda rgb, rng: cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB),
    "darkened (x0.35)": lambda rgb, rng: (rgb * 0.35).astype(np.uint8),
    "side light": _side_light,
    "rotated 25 degrees": _rotated(25.0, borderMode=cv2.BORDER_REFLECT),
    "dark patch (30 % side)": _patch,
    "tight zoomed crop (70 %)": _tight,
}
PRINT_CORRUPTIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "clean": lambda rgb, rng: rgb,
    "rotated 35 degrees": _rotated(35.0, borderValue=(255, 255, 255)),
    "blur (sigma 1.5)": lambda rgb, rng: cv2.GaussianBlur(rgb, (0, 0), 1.5),
    "downscaled to half and back": _half_resolution,
    "JPEG quality 20": lambda rgb, rng: _jpeg(rgb, rng, quality=20),
    "low contrast (x0.4)": lambda rgb, rng: (rgb.mean() + 0.4 * (rgb - rgb.mean())).astype(np.uint8),
    "partial print (central 60 %)": _partial,
    "obliterated (30 % white patch)": _obliterated,
    "z-cut (three 7 px cuts)": _z_cut,
    "obliterated and z-cut": lambda rgb, rng: _z_cut(_obliterated(rgb, rng), rng),
}
CORRUPTIONS = {"face": FACE_CORRUPTIONS, "fingerprint": PRINT_CORRUPTIONS}
DEFAULTS = {  # modality: data, format, test split
    "face": ("../shared/datasets/utkface", "utkface", "src/genderclass/models/face.test_files.txt"),
    "fingerprint": ("../shared/datasets/socofing", "socofing", "src/genderclass/models/fingerprint.test_files.txt"),
}


def _row(name: str, labels: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    m = binary_metrics(labels, p, threshold)
    return {"corruption": name, "n": m["n"], "accuracy": round(m["accuracy"], 4),
            "ci95": [round(bound, 4) for bound in m["accuracy_ci95"]],
            "balanced_accuracy": round(m["balanced_accuracy"], 4), "roc_auc": round(m["roc_auc"] or 0.0, 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modality", choices=sorted(CORRUPTIONS), default="face")
    parser.add_argument("--model", help="model (default: the modality's bundled one)")
    parser.add_argument("--data", help="default: the modality's dataset under ../shared/datasets")
    parser.add_argument("--format", help="default: utkface for faces, socofing for prints")
    parser.add_argument("--split-file", help="default: the bundled model's test files")
    parser.add_argument("--limit", type=int, default=800, help="images drawn at random from the split; 0 = all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data, data_format, split_file = (given or default for given, default in
                                     zip((args.data, args.format, args.split_file), DEFAULTS[args.modality]))  # fmt: skip

    clf = GenderClassifier.load(args.model, modality=args.modality)
    samples, _ = select_listed(read_dataset(data, data_format).samples, Path(split_file).read_text().splitlines(), data)
    if args.limit and args.limit < len(samples):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(samples), args.limit, replace=False))
        samples = [samples[i] for i in keep]
    labels = np.array([s.label for s in samples])
    corruptions = CORRUPTIONS[args.modality]
    crops: dict[str, list[np.ndarray]] = {name: [] for name in corruptions}
    for index, sample in enumerate(progress(samples, desc="corrupt + crop")):
        rgb = load_image(sample.path)
        for name, corrupt in corruptions.items():
            rng = np.random.default_rng([args.seed, index])  # the same draw for an image whatever else runs
            crops[name].append(crop_chip(corrupt(rgb, rng), clf.preprocess, clf.detector)[0].pixels)
    clean: dict | None = None
    for name, images in crops.items():
        row = _row(name, labels, clf.probability(clf.logits(images)), clf.threshold)
        clean = clean or row
        for metric in ("accuracy", "balanced_accuracy", "roc_auc"):
            row[f"change_{metric}"] = round(row[metric] - clean[metric], 4)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
