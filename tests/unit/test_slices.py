"""Head-pose and face-size slices of a face evaluation, from the detector's box and landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genderclass.evaluation.groups import group_metrics
from genderclass.evaluation.slices import band, face_slices, head_pose

# right eye, left eye, nose, mouth right, mouth left of a frontal, upright face (image coordinates)
FRONTAL = np.array([[40.0, 50.0], [80.0, 50.0], [60.0, 72.0], [45.0, 90.0], [75.0, 90.0]])


def _rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = points.mean(0)
    return (points - centre) @ rotation.T + centre


def test_a_frontal_upright_face_has_no_yaw_or_roll():
    yaw, roll = head_pose(FRONTAL)
    assert yaw == pytest.approx(0.0, abs=1e-9) and roll == pytest.approx(0.0, abs=1e-9)


def test_roll_is_the_eye_line_angle_and_does_not_fake_yaw():
    yaw, roll = head_pose(_rotated(FRONTAL, 25.0))
    assert roll == pytest.approx(25.0, abs=1e-6)
    assert yaw == pytest.approx(0.0, abs=1e-6)  # a tilted frontal face is still frontal


def test_yaw_grows_with_the_nose_offset_and_keeps_its_side():
    turned = FRONTAL.copy()
    turned[2, 0] += 0.55 * 40  # the nose one nose-depth towards the image's right: tan(yaw) = 1
    yaw, _ = head_pose(turned)
    assert yaw == pytest.approx(45.0, abs=1e-6)
    turned[2, 0] = FRONTAL[2, 0] - 0.55 * 40 * math.tan(math.radians(20))
    assert head_pose(turned)[0] == pytest.approx(-20.0, abs=1e-6)
    assert head_pose(_rotated(turned, -30.0))[0] == pytest.approx(-20.0, abs=1e-6)  # whatever the roll


def test_bands_and_slices():
    assert [band(v, (15, 30, 45), "°") for v in (0, 14.9, -15, 44, 45, -80)] == [
        "0-15°", "0-15°", "15-30°", "30-45°", "≥45°", "≥45°"
    ]  # fmt: skip
    assert face_slices([10, 10, 60, 70], FRONTAL) == {
        "face_size": "48-96 px",
        "head_yaw": "0-15°",
        "head_roll": "0-10°",
    }
    assert face_slices([0, 0, 300, 280], None) == {"face_size": "≥192 px"}  # no landmarks: no pose


def test_slice_groups_are_ordered_by_their_bands():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.2, 0.3, 0.6, 0.8, 0.4, 0.7])
    sizes = ["≥192 px", "0-48 px", "96-192 px", "48-96 px"] * 2
    table = group_metrics(labels, p, {"face_size": sizes})["face_size"]
    assert [name for name in table if name != "_summary"] == ["0-48 px", "48-96 px", "96-192 px", "≥192 px"]
    assert table["48-96 px"]["accuracy"] == 0.5  # (0.3 -> male, truly female), (0.7 -> female)


def test_evaluate_adds_pose_and_size_to_a_detected_face_only():
    from genderclass.data.readers import Sample
    from genderclass.evaluation.evaluate import _attributes
    from genderclass.faces.detect import Face
    from genderclass.preprocess import Crop

    sample = Sample(path="a.jpg", label=1, attrs={"race": "asian", "face_size": "from the data"})
    face = Face(box=(10, 10, 60, 70), score=0.9, landmarks=FRONTAL)
    detected = _attributes(sample, Crop(pixels=np.zeros((4, 4, 3), np.uint8), box=[10, 10, 60, 70], face=face))
    assert detected == {"race": "asian", "face_size": "from the data", "head_yaw": "0-15°", "head_roll": "0-10°"}
    whole = _attributes(sample, Crop(pixels=np.zeros((4, 4, 3), np.uint8), box=[0, 0, 4, 4], face=None))
    assert whole == sample.attrs
