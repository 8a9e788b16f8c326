"""The face detector: the bundled ONNX graph and our ctypes call give the same answers as
``yuface.detect``; no memory growth; safe from threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from webcorpus import face_photo, photo

from genderclass.faces.detect import LeakFreeYuFace, OnnxYuNet, face_detector_onnx_path
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


@pytest.mark.parametrize("conf", [0.3, 0.6])
def test_onnx_graph_gives_the_libraries_detections(conf):
    """Same network, same post-processing: identical integer boxes, landmarks and scores."""
    native, onnx_graph = LeakFreeYuFace(), OnnxYuNet()
    found = 0
    for bgr in _images():
        expected, got = native(bgr, conf=conf), onnx_graph(bgr, conf=conf)
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(np.asarray(a, np.int64), np.asarray(b, np.int64))
        found += len(got[0])
    assert found >= 5


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
