"""The one crop function, used identically when building the training cache and at inference."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .detect import Face


@dataclass(frozen=True)
class FaceLayout:
    """Where the detector's landmarks fall in ``crop_face``'s crop, eyes levelled (``landmarks_in_crop``):
    heights below the crop's centre (negative: above it) and the eye distance, in units of the box's
    longer side (the crop's side before the margin)."""

    eyes: float
    nose: float  # the nose tip
    mouth: float  # the mouth corners
    eye_distance: float


# Means over 500 UTKFace training chips (scripts/face_layout_probe.py; sd 0.02-0.03 each). 500 CelebA
# crops put the eyes lower in the box (eyes -0.115, nose tip 0.087, mouth 0.240, eye distance 0.349),
# their brows' top 0.028 crop sides lower: the UTKFace line stays above the brows of both.
DETECTOR_LAYOUT = FaceLayout(eyes=-0.140, nose=0.077, mouth=0.230, eye_distance=0.374)

# What the five landmarks do not show, from dlib's 68-point mean face (iBUG 300-W, as OpenFace's
# alignment template has it; 0-1, y downwards): the brows' highest points (points 19, 24: y 0.187) lie
# a third of the eye-to-mouth distance above the eye centres (36-47: y 0.326; mouth corners 48, 54:
# y 0.743), and the face outline at eye height (jaw points 0, 16: x 0.079, 0.971) 1.17 eye distances
# (eye centres x 0.327, 0.709) beside the face's middle.
BROWS_ABOVE_EYES = (0.326 - 0.187) / (0.743 - 0.326)  # eye-to-mouth distances
FACE_HALF_WIDTH = (0.971 - 0.079) / 2 / (0.709 - 0.327)  # eye distances


@dataclass(frozen=True)
class HairRegion:
    """Where the hair lies in an aligned face crop: fractions of the crop's side from its top (left) edge."""

    brow: float  # the brows' top: above it, forehead and hair across the whole width
    ears: float  # the ear lobes' height (about the nose tip's): beside the face, hair and ears down to it
    side: float  # the face outline at eye height, from the left edge (the crop is centred on the face)


def hair_region(margin: float, layout: FaceLayout = DETECTOR_LAYOUT) -> HairRegion:
    """The :class:`HairRegion` of a face of ``layout`` in a crop of ``margin`` (``crop_face``): the brows'
    top a third of the eye-to-mouth distance above the eyes, the ear lobes at the nose tip's height,
    the outline 1.17 eye distances beside the middle."""
    scale = 1.0 / (1.0 + 2.0 * margin)  # box side -> crop side
    brows = layout.eyes - BROWS_ABOVE_EYES * (layout.mouth - layout.eyes)
    outline = FACE_HALF_WIDTH * layout.eye_distance
    return HairRegion(brow=0.5 + brows * scale, ears=0.5 + layout.nose * scale, side=0.5 - outline * scale)


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
    cx, cy, side, angle = _crop_frame(rgb.shape[:2], face, margin, align)
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


def _crop_frame(
    shape: tuple[int, ...], face: Face | None, margin: float, align: bool
) -> tuple[float, float, float, float]:
    """``crop_face``'s square in the image: its centre, side and rotation (degrees)."""
    height, width = shape
    if face is None:
        return width / 2.0, height / 2.0, float(max(width, height)), 0.0
    x1, y1, x2, y2 = face.box
    angle = eye_angle(face.landmarks) if align and face.landmarks is not None else 0.0
    return (x1 + x2) / 2.0, (y1 + y2) / 2.0, max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin), angle


def landmarks_in_crop(face: Face, align: bool = True) -> np.ndarray:
    """``face``'s landmarks (5 x 2) where ``crop_face`` puts them: relative to the crop's centre, in
    units of the box's longer side (a crop of margin m and ``size`` px has the point at
    ``size * (0.5 + xy / (1 + 2 m))``)."""
    cx, cy, side, angle = _crop_frame((0, 0), face, 0.0, align)
    rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    moved = face.landmarks @ rotation[:, :2].T + rotation[:, 2]
    return (moved - (cx, cy)) / max(side, 1.0)


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
