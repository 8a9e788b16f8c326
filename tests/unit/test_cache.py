"""The preprocessing cache: the parallel (spawned-worker) path gives the same arrays as the serial
one and leaves the caller's environment untouched."""

from __future__ import annotations

import os

import numpy as np

from genderclass.config import PreprocessConfig
from genderclass.data.cache import build_cache
from genderclass.data.readers import Sample


def test_parallel_cache_equals_serial(tmp_path, write_image, monkeypatch):
    rng = np.random.default_rng(0)
    samples = [
        Sample(
            path=str(write_image(tmp_path / f"img{i:03d}.png", rng.integers(0, 256, (24, 20), dtype=np.uint8))),
            label=i % 2,
        )
        for i in range(230)  # over the size where workers are used
    ]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    samples.append(Sample(path=str(tmp_path / "bad.png"), label=0))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    cfg = PreprocessConfig(modality="fingerprint", input_size=16, channels=1, detect=False, align=False, chip_pad=0.0)
    parallel = build_cache(samples, cfg, tmp_path / "parallel", workers=2)
    serial = build_cache(samples, cfg, tmp_path / "serial", workers=1)
    assert len(parallel.labels) == 230  # the unreadable file is skipped, not fatal
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.labels, serial.labels)
    assert parallel.paths.tolist() == serial.paths.tolist()
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ
