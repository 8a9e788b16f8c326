"""``genderclass bench``: medians of per-face latency, batched throughput, end to end, cold start."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .classifier import GenderClassifier


def _median_ms(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def synthetic_photo(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A 640x480 RGB test image (smooth noise); detection still runs over the whole frame."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def cold_start_seconds(
    model: str | None, modality: str | None, image: Path, runs: int = 3, device: str = "cpu"
) -> float:
    """Median wall time of a fresh ``genderclass predict IMAGE`` process: this installation's own
    command (the script beside this interpreter), not whichever ``genderclass`` is first on PATH."""
    script = Path(sys.executable).with_name("genderclass")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "genderclass.cli.main"]
    command += ["-q", "predict", str(image), "--device", device]
    command += ["--model", model] if model else ["--modality", modality or "face"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise ValueError(f"the cold-start run failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return statistics.median(times)


def run_bench(
    model: str | None,
    modality: str | None,
    image: str | None,
    repeat: int = 100,
    cold_start: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    clf = GenderClassifier.load(model, modality=modality, device=device)
    size, channels = clf.preprocess.input_size, clf.preprocess.channels
    crop = np.random.default_rng(0).integers(0, 255, (size, size, channels), dtype=np.uint8)
    batch = [crop] * 64
    one_ms = _median_ms(lambda: clf.logits([crop]), repeat)
    batch_ms = _median_ms(lambda: clf.logits(batch, batch_size=64), max(10, repeat // 10))
    results: dict[str, Any] = {
        "model": str(clf.path),
        "device": device,
        "classifier_ms_per_face_batch1": round(one_ms, 3),
        "classifier_faces_per_s_batch64": round(64 / (batch_ms / 1000.0), 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if image:
            photo_path = Path(image)
        else:
            photo_path = Path(tmp) / "photo.png"
            cv2.imwrite(str(photo_path), synthetic_photo())
        photo = photo_path.read_bytes()
        e2e = clf.predict(photo)
        if e2e["error"]:  # timing the error path would print a meaningless speed
            raise ValueError(f"cannot time {photo_path}: {e2e['error']}")
        results["end_to_end_image"] = str(image) if image else "synthetic 640x480"
        results["end_to_end_faces_found"] = len(e2e["faces"])
        results["end_to_end_ms"] = round(_median_ms(lambda: clf.predict(photo), max(10, repeat // 2)), 3)
        if cold_start:
            results["cold_start_predict_s"] = round(cold_start_seconds(model, modality, photo_path, device=device), 3)
    return results
