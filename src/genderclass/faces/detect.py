"""Face detection behind one small interface.

The default backend is YuNet from the ``yuface`` package (libfacedetection, BSD): its weights are
compiled into the wheel, so nothing is downloaded. Another backend only has to implement
``FaceDetector.detect``.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..config import DETECT_MAX_SIDE, DETECT_MIN_SCORE

YUNET_MAX_SIDE = 960  # the backend degrades above this size
_RESULT_BYTES = 0x9000  # libfacedetection's result buffer size (int count + 16 shorts per face)
_SYMBOL = "_Z14facedetect_cnnPhS_iii"  # int* facedetect_cnn(unsigned char*, unsigned char*, int, int, int)
log = logging.getLogger(__name__)


@dataclass
class Face:
    """A detected face in original-image pixel coordinates."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    landmarks: np.ndarray | None = None  # (5, 2): right eye, left eye, nose, mouth right, mouth left

    def int_box(self, width: int, height: int) -> list[int]:
        x1, y1, x2, y2 = self.box
        return [
            int(np.clip(round(x1), 0, width)),
            int(np.clip(round(y1), 0, height)),
            int(np.clip(round(x2), 0, width)),
            int(np.clip(round(y2), 0, height)),
        ]


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Return faces found in an RGB uint8 image, best first."""
        ...


class LeakFreeYuFace:
    """``yuface.detect(bgr, conf)`` -> (confs, boxes XYWH, landmarks), without its memory leak.

    ``yuface.detect`` (2023.5.1) leaks its ~36 kB result buffer on every call (~35 MB per 1,000
    detections, measured). The library it wraps, libfacedetection (in the same wheel), takes a
    caller-owned buffer, so it is called through ctypes with one reused buffer per instance (so one
    instance per thread).
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


class YuNetDetector:
    """YuNet via ``yuface``. Large photos are downscaled to ``max_side`` first (speed); if nothing
    is found there, the image is tried once more at up to 960 px so small faces are not lost."""

    def __init__(self, min_score: float = DETECT_MIN_SCORE, max_side: int = DETECT_MAX_SIDE) -> None:
        # Its OpenMP threads busy-wait by default, which starves everything else on a busy CPU
        # (measured 10x slower detection next to another process). Must be set before loading.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import yuface  # imported lazily: only needed when detection is used

        try:
            self._detect = LeakFreeYuFace()
        except (OSError, AttributeError) as exc:
            log.warning("face detector: falling back to yuface.detect, which leaks memory per call (%s)", exc)
            self._detect = yuface.detect
        self.min_score = min_score
        self.max_side = max_side

    def _run(self, rgb: np.ndarray, max_side: int) -> list[Face]:
        height, width = rgb.shape[:2]
        scale = min(1.0, max_side / max(height, width))
        image = (
            rgb
            if scale == 1.0
            else cv2.resize(
                rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
            )
        )
        # The backend wants BGR; swapping channels after the resize touches far fewer pixels
        # (the resize treats channels independently, so the result is the same).
        confs, boxes, marks = self._detect(np.ascontiguousarray(image[:, :, ::-1]), conf=self.min_score)
        faces = []
        for conf, (x, y, w, h), lm in zip(confs.tolist(), boxes.astype(float), marks.astype(float)):
            faces.append(
                Face(
                    box=(x / scale, y / scale, (x + w) / scale, (y + h) / scale),
                    score=conf / 100.0,
                    landmarks=lm.reshape(5, 2) / scale,
                )
            )
        faces.sort(key=lambda f: f.score, reverse=True)
        return _suppress_overlaps(faces)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        faces = self._run(rgb, self.max_side)
        if not faces and max(rgb.shape[:2]) > self.max_side:
            faces = self._run(rgb, YUNET_MAX_SIDE)
        return faces


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _suppress_overlaps(faces: list[Face], threshold: float = 0.4) -> list[Face]:
    kept: list[Face] = []
    for face in faces:
        if all(_iou(face.box, k.box) < threshold for k in kept):
            kept.append(face)
    return kept


def default_detector(max_side: int = DETECT_MAX_SIDE) -> FaceDetector:
    """YuNet, looking at photos downscaled to ``max_side`` (smaller is faster, and misses smaller
    faces unless none is found at all, which triggers the 960 px retry)."""
    return YuNetDetector(max_side=max_side)
