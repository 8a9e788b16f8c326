"""The face detector as a server's threads share it: one detector per thread.

The default backend (ONNX Runtime) shares one session, whose ``run`` is thread-safe, so a detector
per thread costs little. The C++ backend (libfacedetection) keeps its network weights in
process-wide arrays that it fills on the first call and only reads afterwards; every call works in
its own buffers, and our ctypes wrapper gives each detector instance its own result buffer. So
after one warm-up call, made here before any request thread exists, a detector per thread runs in
parallel without a lock with either backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class ThreadLocalDetector:
    """Gives each calling thread its own detector made by ``factory``."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._local = threading.local()
        self._local.detector = factory()
        self._local.detector.detect(np.zeros((64, 64, 3), np.uint8))  # fills the library's weights once

    def detect(self, rgb: np.ndarray) -> list:
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = self._factory()
        return detector.detect(rgb)


def server_detector(max_side: int, device: str = "cpu") -> ThreadLocalDetector:
    """The default (leak-free) face detector, one instance per server thread."""
    from functools import partial

    from ..faces.detect import default_detector

    return ThreadLocalDetector(partial(default_detector, max_side, device=device))
