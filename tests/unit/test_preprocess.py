"""Image -> network input: crop geometry, alignment, channels, batching, and the configs."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from genderclass.config import PreprocessConfig, TrainConfig
from genderclass.faces.crop import DETECTOR_LAYOUT, crop_face, eye_angle, hair_region, landmarks_in_crop, pad_chip
from genderclass.faces.detect import Face
from genderclass.preprocess import crops_for_image, make_crop, to_batch, to_channels


def _disc_image(width: int, height: int, radius: int, centre: tuple[int, int] | None = None) -> np.ndarray:
    image = np.full((height, width, 3), 255, np.uint8)
    cx, cy = centre or (width // 2, height // 2)
    cv2.circle(image, (cx, cy), radius, (0, 0, 0), -1, lineType=cv2.LINE_AA)
    return image


def _dark_extent(crop: np.ndarray) -> tuple[float, float, float, float]:
    """Width, height and centroid of the dark pixels of a crop."""
    dark = crop[:, :, 0] < 128
    ys, xs = np.nonzero(dark)
    return float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1), float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("size", [32, 96])
def test_crop_face_shape_and_dtype(size):
    rgb = np.random.default_rng(0).integers(0, 256, (70, 50, 3), dtype=np.uint8)
    assert crop_face(rgb, None, size, 0.05).shape == (size, size, 3)
    face = Face(box=(10, 10, 40, 50), score=0.9)
    out = crop_face(rgb, face, size, 0.05)
    assert out.shape == (size, size, 3)
    assert out.dtype == np.uint8


@pytest.mark.parametrize(("width", "height"), [(120, 40), (40, 120), (1000, 640), (50, 50)])
def test_whole_image_crop_pads_to_square_and_keeps_aspect(width, height):
    """face=None: a wide (or tall) image is padded, never stretched: a disc stays round and centred."""
    radius = min(width, height) // 3
    rgb = _disc_image(width, height, radius)
    size = 96
    crop = crop_face(rgb, None, size, margin=0.3, align=True)  # margin/align do not apply without a face
    w, h, cx, cy = _dark_extent(crop)
    expected = 2 * radius * size / max(width, height)
    assert w == pytest.approx(expected, abs=2.0)
    assert h == pytest.approx(expected, abs=2.0)
    assert cx == pytest.approx((size - 1) / 2, abs=1.0)
    assert cy == pytest.approx((size - 1) / 2, abs=1.0)
    # the padding repeats the border (white here), it is not black
    assert crop[0, 0].min() > 200 and crop[-1, -1].min() > 200


def _crop_via_whole_image_shrink(rgb: np.ndarray, face: Face, size: int, margin: float) -> np.ndarray:
    """Reference for large faces: shrink the WHOLE image by the crop's whole factor, then warp."""
    x1, y1, x2, y2 = face.box
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    scale = size / side
    matrix = cv2.getRotationMatrix2D((cx, cy), eye_angle(face.landmarks), scale)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    k = int(np.ceil(0.5 / scale))
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb[: h // k * k, : w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA)
    matrix[:, 2] += matrix[:, :2] @ np.array([0.5 * k - 0.5, 0.5 * k - 0.5])
    matrix[:, :2] *= k
    return cv2.warpAffine(small, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize(
    "box",
    [(130, 30, 510, 450), (400, 300, 700, 600), (-50, -40, 300, 320), (300, 200, 620, 470)],
    ids=["centre", "off-bottom-right", "off-top-left", "near-edge"],
)
def test_large_face_crop_shrinks_only_its_region_with_the_same_pixels(box):
    """A face much larger than the input size is shrunk region-only (fast); the pixels are exactly
    those of shrinking the whole image, including where the crop leaves the image."""
    rgb = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8), (0, 0), 3)
    x1, y1, x2, y2 = box
    eyes = [[x1 + 0.3 * (x2 - x1), y1 + 0.40 * (y2 - y1)], [x1 + 0.7 * (x2 - x1), y1 + 0.35 * (y2 - y1)]]
    face = Face(box=box, score=0.9, landmarks=np.array(eyes + [[0, 0]] * 3, dtype=float))
    crop = crop_face(rgb, face, 112, 0.05)
    np.testing.assert_array_equal(crop, _crop_via_whole_image_shrink(rgb, face, 112, 0.05))


def test_face_crop_is_centred_on_the_box_with_margin():
    rgb = _disc_image(300, 200, 20, centre=(200, 80))
    face = Face(box=(180, 60, 220, 100), score=0.99)  # 40 px box around the disc
    size = 64
    crop = crop_face(rgb, face, size, margin=0.25, align=False)
    w, h, cx, cy = _dark_extent(crop)
    # side = 40 * (1 + 2 * 0.25) = 60 px -> disc of 40 px becomes 40 * 64 / 60
    assert w == pytest.approx(40 * size / 60, abs=2.0)
    assert h == pytest.approx(40 * size / 60, abs=2.0)
    assert cx == pytest.approx((size - 1) / 2, abs=1.0)
    assert cy == pytest.approx((size - 1) / 2, abs=1.0)


def _eyes_image(angle_deg: float):
    """Two dark dots ("eyes") 60 px apart, tilted by ``angle_deg`` (positive: right eye lower)."""
    rgb = np.full((200, 200, 3), 255, np.uint8)
    centre = np.array([100.0, 100.0])
    half = 30.0 * np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    left, right = centre - half, centre + half
    for point, colour in ((left, (0, 0, 0)), (right, (0, 0, 255))):
        cv2.circle(rgb, (round(point[0]), round(point[1])), 6, colour, -1)
    landmarks = np.array([right, left, centre + [0, 15], centre + [15, 30], centre + [-15, 30]])  # right eye first
    return rgb, Face(box=(55, 55, 145, 145), score=0.95, landmarks=landmarks)


def _dot_centres(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    red, blue = crop[:, :, 0].astype(int), crop[:, :, 2].astype(int)
    black = (red < 100) & (blue < 100)
    blueish = (red < 100) & (blue > 150)
    ys, xs = np.nonzero(black)
    yb, xb = np.nonzero(blueish)
    return np.array([xs.mean(), ys.mean()]), np.array([xb.mean(), yb.mean()])


@pytest.mark.parametrize("angle", [20.0, -25.0, 8.0])
def test_eye_alignment_levels_the_eyes(angle):
    rgb, face = _eyes_image(angle)
    aligned = crop_face(rgb, face, 96, margin=0.0, align=True)
    left, right = _dot_centres(aligned)
    assert right[0] > left[0]  # no mirror: the right-hand dot stays on the right
    assert abs(right[1] - left[1]) < 1.0
    unaligned = crop_face(rgb, face, 96, margin=0.0, align=False)
    left_u, right_u = _dot_centres(unaligned)
    assert (right_u[1] - left_u[1]) == pytest.approx(60 * np.sin(np.radians(angle)) * 96 / 90, abs=1.5)


@pytest.mark.parametrize(("angle", "margin"), [(20.0, 0.0), (-25.0, 0.1), (8.0, 0.25)])
def test_landmarks_in_crop_are_where_the_crop_puts_them(angle, margin):
    """``landmarks_in_crop`` (what places the brow line of ``--hair-erase``) agrees with ``crop_face``."""
    rgb, face = _eyes_image(angle)
    left, right = _dot_centres(crop_face(rgb, face, 96, margin=margin, align=True))
    expected = 96 * (0.5 + landmarks_in_crop(face) / (1 + 2 * margin))  # right eye first
    np.testing.assert_allclose(right, expected[0], atol=1.0)
    np.testing.assert_allclose(left, expected[1], atol=1.0)


@pytest.mark.parametrize("margin", [0.0, 0.05, 0.25])
def test_hair_region_lies_above_the_eyes_and_beside_the_face(margin):
    region, scale = hair_region(margin), 1 / (1 + 2 * margin)
    eyes, mouth = 0.5 + DETECTOR_LAYOUT.eyes * scale, 0.5 + DETECTOR_LAYOUT.mouth * scale
    assert 0 < region.brow < eyes - 0.25 * (mouth - eyes)  # the brows: well above the eyes
    assert eyes < region.ears < mouth
    assert 0 < region.side < 0.5 - DETECTOR_LAYOUT.eye_distance * scale  # beyond the eyes' outer corners
    if margin == 0.05:  # the default crop: the numbers the docs give
        assert (region.brow, region.ears, region.side) == pytest.approx((0.261, 0.570, 0.103), abs=1e-3)


def test_eye_angle_order_independent_and_clipped():
    marks = np.array([[10.0, 10.0], [20.0, 20.0]])
    assert eye_angle(marks) == pytest.approx(45.0)
    assert eye_angle(marks[::-1]) == pytest.approx(45.0)
    assert eye_angle(np.array([[0.0, 0.0], [10.0, 0.0]])) == pytest.approx(0.0)
    assert eye_angle(np.array([[0.0, 0.0], [1.0, 30.0]])) == pytest.approx(45.0)  # clipped
    assert eye_angle(np.array([[0.0, 0.0], [1.0, -30.0]])) == pytest.approx(-45.0)


def test_align_needs_landmarks():
    rgb, face = _eyes_image(20.0)
    no_marks = dataclasses.replace(face, landmarks=None)
    np.testing.assert_array_equal(
        crop_face(rgb, no_marks, 64, 0.1, align=True), crop_face(rgb, face, 64, 0.1, align=False)
    )


def test_pad_chip():
    rgb = np.full((40, 20, 3), 200, np.uint8)
    padded, pad = pad_chip(rgb, 0.25)
    assert pad == 10
    assert padded.shape == (60, 40, 3)
    assert padded[:pad].max() == 0 and padded[:, :pad].max() == 0
    np.testing.assert_array_equal(padded[pad:-pad, pad:-pad], rgb)
    same, zero = pad_chip(rgb, 0.0)
    assert zero == 0 and same is rgb


def test_to_channels():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    assert to_channels(rgb, 3) is rgb
    gray = to_channels(rgb, 1)
    assert gray.shape == (4, 5, 1) and gray.dtype == np.uint8
    assert int(gray[0, 0, 0]) == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    equal = np.full((3, 3, 3), 77, np.uint8)  # fingerprints: R = G = B -> the gray value itself
    assert (to_channels(equal, 1) == 77).all()


def test_to_batch_layout():
    crops = [np.full((8, 6, 3), v, np.uint8) for v in (0, 128, 255)]
    crops[1][2, 3] = (1, 2, 3)
    batch = to_batch(crops)
    assert batch.shape == (3, 3, 8, 6)
    assert batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"]
    assert batch[0].max() == 0.0 and batch[2].min() == 255.0  # values stay 0-255, no normalisation
    assert batch[1, :, 2, 3].tolist() == [1.0, 2.0, 3.0]
    gray = to_batch([np.full((5, 5, 1), 9, np.uint8)])
    assert gray.shape == (1, 1, 5, 5)
    with pytest.raises(ValueError):
        to_batch([])


def test_make_crop_boxes():
    rgb = np.zeros((50, 80, 3), np.uint8)
    cfg = PreprocessConfig(input_size=16)
    whole = make_crop(rgb, None, cfg)
    assert whole.box == [0, 0, 80, 50]
    assert whole.pixels.shape == (16, 16, 3)
    assert whole.face is None
    face = Face(box=(-5.4, 10.6, 90.2, 30.4), score=0.7)
    crop = make_crop(rgb, face, cfg)
    assert crop.box == [0, 11, 80, 30]
    assert all(type(v) is int for v in crop.box)
    gray = make_crop(rgb, None, PreprocessConfig.for_modality("fingerprint", input_size=16))
    assert gray.pixels.shape == (16, 16, 1)


class _FixedDetector:
    def __init__(self, faces):
        self.faces = faces
        self.calls = 0

    def detect(self, rgb):
        self.calls += 1
        return list(self.faces)


def test_crops_for_image_modes():
    rgb = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    faces = [Face(box=(5, 5, 30, 30), score=0.9), Face(box=(40, 10, 80, 55), score=0.8)]
    detector = _FixedDetector(faces)
    cfg = PreprocessConfig(input_size=24)
    crops = crops_for_image(rgb, cfg, detector)
    assert [c.box for c in crops] == [[5, 5, 30, 30], [40, 10, 80, 55]]
    for crop, face in zip(crops, faces):
        np.testing.assert_array_equal(crop.pixels, make_crop(rgb, face, cfg).pixels)
    assert crops_for_image(rgb, cfg, _FixedDetector([])) == []  # a photo without faces has no crops
    no_detect = crops_for_image(rgb, cfg, detector, detect=False)
    assert [c.box for c in no_detect] == [[0, 0, 90, 60]]
    assert detector.calls == 1
    fp = PreprocessConfig.for_modality("fingerprint", input_size=24)
    assert [c.box for c in crops_for_image(rgb, fp, None, detect=True)] == [[0, 0, 90, 60]]  # never detect prints
    with pytest.raises(ValueError):
        crops_for_image(rgb, cfg, None)


def test_face_int_box_clips():
    face = Face(box=(-3.0, 2.49, 120.7, 99.5), score=1.0)
    assert face.int_box(100, 80) == [0, 2, 100, 80]


def test_preprocess_config_round_trip():
    for cfg in (
        PreprocessConfig(),
        PreprocessConfig.for_modality("fingerprint"),
        PreprocessConfig.for_modality("face", input_size=32, margin=0.2, align=False),
    ):
        data = json.loads(json.dumps(cfg.to_dict()))
        assert isinstance(data["mean"], list)
        again = PreprocessConfig.from_dict(data)
        assert again == cfg
        assert isinstance(again.mean, tuple) and isinstance(again.std, tuple)
    assert PreprocessConfig.from_dict({"input_size": 48, "unknown_future_key": 1}).input_size == 48


def test_preprocess_for_modality():
    fp = PreprocessConfig.for_modality("fingerprint")
    assert (fp.channels, len(fp.mean), len(fp.std), fp.detect, fp.align) == (1, 1, 1, False, False)
    face = PreprocessConfig.for_modality("face", input_size=64)
    assert (face.channels, face.input_size, face.detect) == (3, 64, True)
    with pytest.raises(ValueError):
        PreprocessConfig.for_modality("iris")


def test_train_config_round_trip():
    cfg = TrainConfig(
        modality="fingerprint",
        data="some/where",
        format="csv",
        epochs=3,
        lr=1e-3,
        balance="class",
        preprocess=PreprocessConfig.for_modality("fingerprint", input_size=48),
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["preprocess"]["input_size"] == 48
    assert TrainConfig.from_dict(data) == cfg
    assert TrainConfig.from_dict({**data, "removed_option": True}) == cfg
    assert TrainConfig.from_dict({}) == TrainConfig()
