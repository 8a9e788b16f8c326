"""Image -> model input, defined once and resolved from a model's stored ``PreprocessConfig``.

Used by the training cache builder and by every prediction path, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import PreprocessConfig
from .faces.crop import crop_face, pad_chip
from .faces.detect import Face, FaceDetector
from .modalities import modality_for


@dataclass
class Crop:
    """A model-ready crop (uint8, size x size x channels) and where it came from."""

    pixels: np.ndarray
    box: list[int]  # x1, y1, x2, y2 in the original image
    face: Face | None


def to_channels(crop_rgb: np.ndarray, channels: int) -> np.ndarray:
    """RGB uint8 crop -> HxWxC uint8 with C = 1 (gray) or 3."""
    if channels == 1:
        # Fingerprints have R = G = B; for others, luminance.
        return cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    return crop_rgb


def make_crop(rgb: np.ndarray, face: Face | None, cfg: PreprocessConfig) -> Crop:
    height, width = rgb.shape[:2]
    pixels = to_channels(crop_face(rgb, face, cfg.input_size, cfg.margin, cfg.align), cfg.channels)
    box = face.int_box(width, height) if face is not None else [0, 0, width, height]
    return Crop(pixels=pixels, box=box, face=face)


def outside_image(height: int, width: int, face: Face | None, cfg: PreprocessConfig) -> np.ndarray:
    """Which pixels of ``make_crop``'s crop lie beyond the image's edge (True), where the crop
    repeats the edge's pixels: the same geometry as the crop, applied to an all-white image."""
    inside = crop_face(np.full((height, width), 255, np.uint8), face, cfg.input_size, cfg.margin, cfg.align, 0.0)
    return inside < 128


def crops_for_image(
    rgb: np.ndarray, cfg: PreprocessConfig, detector: FaceDetector | None, detect: bool | None = None
) -> list[Crop]:
    """All crops to classify in one image: one per detected face, or the whole image."""
    use_detector = cfg.detect if detect is None else detect
    if not use_detector or not modality_for(cfg.modality).detects_faces:
        return [make_crop(rgb, None, cfg)]
    if detector is None:
        raise ValueError("face detection requested but no detector given")
    return [make_crop(rgb, face, cfg) for face in detector.detect(rgb)]


def crop_chip(rgb: np.ndarray, cfg: PreprocessConfig, detector: FaceDetector | None) -> tuple[Crop, bool]:
    """Crop a pre-cropped training chip the way a photo is cropped at inference.

    The chip is padded so the detector sees the whole face, the best face nearest the centre is
    kept and mapped back to chip coordinates; if none is found, the chip itself is used.
    Returns the crop and whether the detector found the face.
    """
    if not modality_for(cfg.modality).detects_faces or not cfg.detect or detector is None:
        return make_crop(rgb, None, cfg), False
    padded, pad = pad_chip(rgb, cfg.chip_pad)
    faces = detector.detect(padded)
    if not faces:
        return make_crop(rgb, None, cfg), False
    centre = np.array(padded.shape[1::-1], dtype=float) / 2.0

    def rank(face: Face) -> float:
        x1, y1, x2, y2 = face.box
        return float(np.hypot((x1 + x2) / 2 - centre[0], (y1 + y2) / 2 - centre[1])) / max(x2 - x1, 1.0) - face.score

    best = min(faces, key=rank)
    x1, y1, x2, y2 = best.box
    shifted = Face(
        box=(x1 - pad, y1 - pad, x2 - pad, y2 - pad),
        score=best.score,
        landmarks=None if best.landmarks is None else best.landmarks - pad,
    )
    return make_crop(rgb, shifted, cfg), True


def to_batch(crops: list[np.ndarray]) -> np.ndarray:
    """Stack HxWxC uint8 crops into the network's float32 NCHW input (pixel values 0-255)."""
    if not crops:
        raise ValueError("no crops to batch")
    stacked = np.stack(crops)
    batch = np.empty((stacked.shape[0], stacked.shape[3], *stacked.shape[1:3]), dtype=np.float32)
    batch[...] = stacked.transpose(0, 3, 1, 2)  # one pass: cast while copying (5x faster than astype)
    return batch
