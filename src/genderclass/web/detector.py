"""The face detector as a long-running server needs it: thread-safe and without a memory leak.

``yuface.detect`` (yuface 2023.5.1) leaks its ~36 kB result buffer on every call: a server grows by
about 35 MB per 1,000 detections (measured). The library it wraps, libfacedetection (shipped inside
the same wheel), takes a caller-owned buffer, so here it is called through ctypes with one buffer that
is reused. Calls are serialised by a lock, which also covers the library's lazy initialisation.

This belongs in ``genderclass.faces.detect``; until it moves there, the server swaps the function
into the default ``YuNetDetector`` and falls back to ``yuface.detect`` if the library is not found.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any

import numpy as np

log = logging.getLogger("genderclass.web")

_RESULT_BYTES = 0x9000  # libfacedetection's documented result buffer size (int count + 16 shorts per face)
_SYMBOL = "_Z14facedetect_cnnPhS_iii"  # int* facedetect_cnn(unsigned char*, unsigned char*, int, int, int)


class LockedDetector:
    """Serialises calls into a detector whose native code makes no thread-safety promise."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list:
        with self._lock:
            return self.detector.detect(rgb)


class LeakFreeYuFace:
    """Drop-in for ``yuface.detect(bgr, conf)`` -> (confs, boxes XYWH, landmarks), with a reused buffer.

    Not thread-safe on its own (one buffer): use it behind ``LockedDetector``.
    """

    def __init__(self) -> None:
        import yuface

        library = ctypes.CDLL(os.path.join(os.path.dirname(yuface.__file__), "libfacedetection.so"))
        self._fn = getattr(library, _SYMBOL)
        self._fn.restype = ctypes.c_void_p
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._buffer = np.zeros(_RESULT_BYTES, dtype=np.uint8)

    def __call__(self, bgr: np.ndarray, conf: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = np.ascontiguousarray(bgr, dtype=np.uint8)
        height, width = image.shape[:2]
        self._fn(self._buffer.ctypes.data, image.ctypes.data, width, height, width * 3)
        count = int(self._buffer[:4].view(np.int32)[0])
        count = max(0, min(count, (_RESULT_BYTES - 4) // 32))
        rows = self._buffer[4 : 4 + 32 * count].view(np.int16).reshape(count, 16).copy()
        rows = rows[rows[:, 0] > conf * 100]
        return rows[:, 0], rows[:, 1:5], rows[:, 5:15]


def server_detector() -> LockedDetector:
    """The default face detector, leak-free if possible, behind a lock."""
    from ..faces.detect import YuNetDetector, default_detector

    detector = default_detector()
    if isinstance(detector, YuNetDetector) and hasattr(detector, "_detect"):
        try:
            detector._detect = LeakFreeYuFace()
        except (ImportError, OSError, AttributeError) as exc:
            log.warning("face detector: using yuface.detect, which leaks memory per call (%s)", exc)
    return LockedDetector(detector)
