"""The face detector as a server's threads share it: one instance, calls serialised by a lock
(the native library makes no thread-safety promise and reuses one result buffer)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

log = logging.getLogger("genderclass.web")


class LockedDetector:
    """Serialises calls into a detector whose native code makes no thread-safety promise."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list:
        with self._lock:
            return self.detector.detect(rgb)


def server_detector(max_side: int) -> LockedDetector:
    """The default (leak-free) face detector behind a lock, shared by the server's threads."""
    from ..faces.detect import default_detector

    return LockedDetector(default_detector(max_side))
