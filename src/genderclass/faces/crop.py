"""The one crop function, used identically when building the training cache and at inference."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .detect import Face


def crop_face(
    rgb: np.ndarray,
    face: Face | None,
    size: int,
    margin: float,
    align: bool = True,
    border_value: float | None = None,
) -> np.ndarray:
    """Return a square ``size`` x ``size`` crop around ``face``.

    The square is centred on the detector box, its side is the box's longer side times
    ``1 + 2 * margin``; with ``align`` and landmarks, it is rotated so the eyes are level.
    Pixels outside the image repeat the border (``border_value``: that constant instead).
    ``face=None`` means the whole image is the face (pre-cropped inputs, fingerprints): it is padded
    to a square, keeping its aspect ratio.
    """
    height, width = rgb.shape[:2]
    if face is None:
        cx, cy, side, angle = width / 2.0, height / 2.0, float(max(width, height)), 0.0
    else:
        x1, y1, x2, y2 = face.box
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
        angle = eye_angle(face.landmarks) if align and face.landmarks is not None else 0.0
    scale = size / max(side, 1.0)
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[0, 2] += size / 2.0 - cx
    matrix[1, 2] += size / 2.0 - cy
    if scale < 0.5:  # warpAffine has no INTER_AREA: shrink by a whole factor first (no aliasing)
        rgb, matrix = _shrink_region(rgb, matrix, cx, cy, side, angle, math.ceil(0.5 / scale))
    border = (
        {"borderMode": cv2.BORDER_REPLICATE}
        if border_value is None
        else {"borderMode": cv2.BORDER_CONSTANT, "borderValue": (border_value,) * 4}
    )
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, **border)


def _shrink_region(
    rgb: np.ndarray, matrix: np.ndarray, cx: float, cy: float, side: float, angle: float, factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shrink (INTER_AREA, whole ``factor``) only the part of ``rgb`` the crop samples.

    The region is aligned to multiples of ``factor``, so the result equals shrinking the whole
    image and cutting the same part out of it; ``matrix`` is adjusted to the region's pixels.
    """
    height, width = rgb.shape[:2]
    rad = math.radians(angle)
    half = side / 2.0 * (abs(math.cos(rad)) + abs(math.sin(rad))) + 2 * factor  # + bilinear support
    usable_w, usable_h = (width // factor) * factor, (height // factor) * factor
    x0 = int(np.clip(math.floor((cx - half) / factor) * factor, 0, max(0, usable_w - factor)))
    y0 = int(np.clip(math.floor((cy - half) / factor) * factor, 0, max(0, usable_h - factor)))
    x1 = int(np.clip(math.ceil((cx + half) / factor) * factor, x0 + factor, usable_w))
    y1 = int(np.clip(math.ceil((cy + half) / factor) * factor, y0 + factor, usable_h))
    if x1 <= x0 or y1 <= y0:  # image smaller than one factor block: nothing to shrink
        return rgb, matrix
    region = cv2.resize(rgb[y0:y1, x0:x1], ((x1 - x0) // factor, (y1 - y0) // factor), interpolation=cv2.INTER_AREA)
    shrunk = matrix.copy()
    # region pixel (u, v) = image pixel (x0 + (u + 0.5) * factor - 0.5, ...): fold that into the matrix
    to_image = np.array([[factor, 0.0, x0 + 0.5 * factor - 0.5], [0.0, factor, y0 + 0.5 * factor - 0.5]])
    shrunk[:, :2] = matrix[:, :2] @ to_image[:, :2]
    shrunk[:, 2] = matrix[:, :2] @ to_image[:, 2] + matrix[:, 2]
    return region, shrunk


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees that levels the eyes (landmarks[0] and [1] are the two eyes)."""
    (xa, ya), (xb, yb) = landmarks[0], landmarks[1]
    if xa > xb:
        (xa, ya), (xb, yb) = (xb, yb), (xa, ya)
    angle = math.degrees(math.atan2(yb - ya, xb - xa))
    return float(np.clip(angle, -45.0, 45.0))


def pad_chip(rgb: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    """Pad a pre-cropped face chip with black so the detector sees it whole; returns (image, pad)."""
    pad = round(max(rgb.shape[:2]) * fraction)
    if pad <= 0:
        return rgb, 0
    return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)), pad
