"""Slices of a face evaluation that no label file holds: head pose and face size, read from what
the detector returned for each face. They show for whom and for which photos a model fails where
the data's own attributes (age, race) cannot: three-quarter views, tilted heads, small faces.

Head pose is estimated from the five landmarks (right eye, left eye, nose, mouth corners): roll is
the angle of the line through the eyes; yaw is the nose's sideways offset from the eyes' midpoint
(in the frame where the eye line is level), in eye distances, turned into an angle assuming the
nose tip sits 0.55 eye distances in front of the eyes (an adult average). It is a rough estimate
(a few degrees near frontal, coarser beyond 45 degrees, where the detector's landmarks drift), good
enough for bands, not for measuring a face.
"""

from __future__ import annotations

import math

import numpy as np

NOSE_DEPTH = 0.55  # nose tip in front of the eye plane, in inter-ocular distances
YAW_EDGES = (15, 30, 45)
ROLL_EDGES = (10, 20)
SIZE_EDGES = (48, 96, 192)  # face box side in the photo's pixels; the models see 128 px crops
SLICE_ATTRIBUTES = ("head_yaw", "head_roll", "face_size")


def head_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(yaw, roll) in degrees from five landmarks; yaw > 0: the nose points towards the image's right."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye, nose = points[0], points[1], points[2]
    eye_line = left_eye - right_eye
    distance = float(np.hypot(*eye_line))
    if distance < 1e-6:
        return 0.0, 0.0
    roll = math.degrees(math.atan2(eye_line[1], eye_line[0]))
    cos, sin = eye_line / distance
    offset = nose - (right_eye + left_eye) / 2.0
    along_eyes = offset[0] * cos + offset[1] * sin  # the nose's offset along the level eye line
    yaw = math.degrees(math.atan2(along_eyes / distance, NOSE_DEPTH))
    return yaw, roll


def band(value: float, edges: tuple[int, ...], unit: str) -> str:
    """``|value|`` as a band name: "0-15°", "15-30°", ..., "≥45°" (lower end included; sorted by
    :func:`band_order`)."""
    value = abs(value)
    low = 0
    for edge in edges:
        if value < edge:
            return f"{low}-{edge}{unit}"
        low = edge
    return f"≥{low}{unit}"


def band_order(value: str) -> float:
    """A band's lower end, for ordering band names numerically."""
    digits = "".join(ch for ch in value.split("-")[0] if ch.isdigit())
    return float(digits) if digits else math.inf


def face_slices(box: list[int], landmarks: np.ndarray | None) -> dict[str, str]:
    """A detected face's pose bands (when it has landmarks) and size band."""
    x1, y1, x2, y2 = box
    slices = {"face_size": band(max(x2 - x1, y2 - y1), SIZE_EDGES, " px")}
    if landmarks is not None:
        yaw, roll = head_pose(landmarks)
        slices |= {"head_yaw": band(yaw, YAW_EDGES, "°"), "head_roll": band(roll, ROLL_EDGES, "°")}
    return slices
