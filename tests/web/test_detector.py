"""The face detector: the bundled ONNX graph and our ctypes call give the same answers as
``yuface.detect``; no memory growth; safe from threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from webcorpus import draw_face, face_photo, photo

from genderclass.faces.detect import LeakFreeYuFace, OnnxYuNet, face_detector_onnx_path, nms
from genderclass.web.detector import server_detector

yuface = pytest.importorskip("yuface")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _images() -> list[np.ndarray]:
    images = [face_photo(640, 480, seed) for seed in range(3)] + [face_photo(320, 320, 7), photo(320, 240, 1)]
    cut = face_photo(640, 480, 4)[:, 250:]  # a face cut by the image border: negative coordinates
    return [np.ascontiguousarray(image[:, :, ::-1]) for image in [*images, cut]]


@pytest.mark.parametrize("conf", [0.0, 0.6])
def test_same_detections_as_yuface(conf):
    ours = LeakFreeYuFace()
    found = 0
    for bgr in _images():
        expected, got = yuface.detect(bgr, conf=conf), ours(bgr, conf=conf)
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(np.asarray(a, np.int64), np.asarray(b, np.int64))
        found += len(got[0])
    assert found >= 5  # the cartoon faces are found


def _overlapping_pairs() -> list[np.ndarray]:
    """Two cartoon faces, side by side at shrinking distances: their boxes overlap more and more
    (IoU around libfacedetection's NMS threshold of 0.45), so non-maximum suppression decides."""
    images = []
    for index, gap in enumerate((150, 120, 100, 90, 80, 70, 60)):
        image = draw_face(photo(480, 360, index), 240 - gap // 2, 180, 220)
        images.append(np.ascontiguousarray(draw_face(image, 240 + gap // 2, 180, 220)[:, :, ::-1]))
    return images


@pytest.mark.parametrize("conf", [0.3, 0.6])
def test_onnx_graph_gives_the_libraries_detections(conf):
    """Same network, same post-processing: the same faces, integer boxes, landmarks and scores
    within 1 (float rounding before the C++ integer casts differs in the last bit now and then)."""
    native, onnx_graph = LeakFreeYuFace(), OnnxYuNet()
    found = pairs = 0
    for bgr in [*_images(), *_overlapping_pairs()]:
        expected, got = native(bgr, conf=conf), onnx_graph(bgr, conf=conf)
        assert len(got[0]) == len(expected[0])
        for a, b in zip(expected, got):
            np.testing.assert_allclose(np.asarray(b, np.int64), np.asarray(a, np.int64), atol=1, rtol=0)
        found += len(got[0])
        pairs += len(got[0]) >= 2
    assert found >= 10 and pairs >= 2  # faces are found, and some overlapping pairs both survive NMS


def test_nms_keeps_boxes_up_to_the_overlap_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [2, 0, 12, 10]], np.float32)
    scores = np.array([0.9, 0.9, 0.8, 0.7, 0.95], np.float32)
    # IoUs with box 4 (the best): box 0 and 1: 8/12 = 0.67; box 2: 7/13 = 0.54; box 3: 0
    assert nms(boxes, scores, 0.45, 1000) == [4, 3]
    assert nms(boxes, scores, 0.6, 1000) == [4, 2, 3]  # box 2 stays, boxes 0 and 1 (0.67) go
    assert nms(boxes, scores, 0.7, 1000) == [4, 0, 2, 3]  # box 1 duplicates box 0; box 2 overlaps 0 by 1/3
    assert nms(boxes, scores, 0.45, 2) == [4]  # only the 2 best are considered
    assert nms(boxes[:0], scores[:0], 0.45, 10) == []


def test_bundled_detector_graph_is_what_the_build_script_writes(repo_root):
    """The shipped ONNX file is reproducible from the yuface wheel with the project's script."""
    pytest.importorskip("onnx")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_fd", repo_root / "scripts" / "build_face_detector_onnx.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rebuilt = build.build_model(build.read_layers()).SerializeToString()
    assert rebuilt == face_detector_onnx_path().read_bytes()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_no_memory_growth():
    ours = LeakFreeYuFace()
    bgr = _images()[3]
    for _ in range(20):
        ours(bgr)
    before = _rss_mb()
    for _ in range(300):
        ours(bgr)
    assert _rss_mb() - before < 3.0  # yuface.detect grows ~10 MB over the same 300 calls


def test_server_detector_is_thread_safe():  # one detector per thread, no lock: same answers
    detector = server_detector(320)
    images = [face_photo(480, 360, seed) for seed in range(4)]
    expected = [[f.box for f in detector.detect(image)] for image in images]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: [f.box for f in detector.detect(images[i % 4])], range(200)))
    assert all(got[i] == expected[i % 4] for i in range(200))
    assert all(len(boxes) == 1 for boxes in expected)


def test_detect_max_side_trades_small_faces_for_speed():
    """A small face beside a large one: found at the default side, not at a small one; a small face
    alone is still found at a small side, by the full-size retry."""
    from genderclass.faces.detect import default_detector

    big = face_photo(640, 480, 1)
    scene = big.copy()
    small = face_photo(640, 480, 2)[::5, ::5]  # a 128x96 photo, its face ~40 px wide
    scene[10 : 10 + small.shape[0], 10 : 10 + small.shape[1]] = small
    assert len(default_detector(640).detect(scene)) == 2
    assert len(default_detector(96).detect(scene)) == 1
    alone = np.full_like(big, 128)
    alone[200 : 200 + small.shape[0], 300 : 300 + small.shape[1]] = small
    assert len(default_detector(96).detect(alone)) == 1
