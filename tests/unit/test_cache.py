"""The preprocessing cache: the parallel (spawned-worker) path gives the same arrays as the serial
one and leaves the caller's environment untouched."""

from __future__ import annotations

import os

import numpy as np
import pytest

from genderclass.config import PreprocessConfig
from genderclass.data.cache import build_cache
from genderclass.data.readers import Sample


def test_parallel_cache_equals_serial(tmp_path, write_image, monkeypatch):
    rng = np.random.default_rng(0)
    samples = [
        Sample(
            path=str(write_image(tmp_path / f"img{i:03d}.png", rng.integers(0, 256, (24, 20), dtype=np.uint8))),
            label=i % 2,
        )
        for i in range(230)  # over the size where workers are used
    ]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    samples.append(Sample(path=str(tmp_path / "bad.png"), label=0))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    cfg = PreprocessConfig(modality="fingerprint", input_size=16, channels=1, detect=False, align=False, chip_pad=0.0)
    parallel = build_cache(samples, cfg, tmp_path / "parallel", workers=2)
    serial = build_cache(samples, cfg, tmp_path / "serial", workers=1)
    assert len(parallel.labels) == 230  # the unreadable file is skipped, not fatal
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.labels, serial.labels)
    assert parallel.paths.tolist() == serial.paths.tolist()
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def test_face_cache_keeps_the_beyond_the_edge_mask(tmp_path, write_image):
    """Face crops carry which pixels lie beyond the image's edge (a wide image, padded to a square,
    has them above and below), stored as bits and unpacked to the crop's size (20: not a multiple
    of 8); fingerprint caches have none."""
    path = write_image(tmp_path / "wide.png", np.full((20, 40, 3), 200, dtype=np.uint8))
    face = PreprocessConfig(input_size=20, detect=False)
    cache = build_cache([Sample(path=str(path), label=1)], face, tmp_path / "face", workers=1)
    outside = cache.outside()
    assert outside is not None and outside.shape == (1, 20, 20) and cache.outside_bits.shape == (1, 20, 3)
    assert outside[0, :4].all() and outside[0, -4:].all() and not outside[0, 7:13].any()
    again = build_cache([Sample(path=str(path), label=1)], face, tmp_path / "face", workers=1)  # from the file
    np.testing.assert_array_equal(again.outside(), outside)
    prints = PreprocessConfig(
        modality="fingerprint", input_size=16, channels=1, detect=False, align=False, chip_pad=0.0
    )
    assert build_cache([Sample(path=str(path), label=1)], prints, tmp_path / "fp", workers=1).outside() is None


def test_a_new_cache_reports_the_others_in_its_folder(tmp_path, write_image, caplog):
    path = write_image(tmp_path / "x.png", np.full((20, 20, 3), 90, dtype=np.uint8))
    sample = [Sample(path=str(path), label=0)]
    caplog.set_level("INFO", logger="genderclass")
    build_cache(sample, PreprocessConfig(input_size=16, detect=False), tmp_path / "c", workers=1)
    assert "other cache" not in caplog.text  # the first one: nothing to report
    build_cache(sample, PreprocessConfig(input_size=20, detect=False), tmp_path / "c", workers=1)
    assert "also holds 1 other cache file(s)" in caplog.text
    caplog.clear()
    build_cache(sample, PreprocessConfig(input_size=20, detect=False), tmp_path / "c", workers=1)  # reused
    assert "other cache" not in caplog.text


def test_two_runs_building_one_cache_at_once_do_not_collide(tmp_path, write_image, monkeypatch):
    """Two training runs started together build the same cache: each writes its own partial file,
    and the second to finish replaces the first's result instead of failing."""
    import genderclass.data.cache as cache_module

    path = write_image(tmp_path / "x.png", np.full((20, 20, 3), 90, dtype=np.uint8))
    sample = [Sample(path=str(path), label=0)]
    cfg = PreprocessConfig(input_size=16, detect=False)
    real_savez, rivals = np.savez, []

    def savez_while_a_rival_finishes(file, **arrays):
        real_savez(file, **arrays)
        if not rivals:  # the other run (another process) writes and publishes the same cache now
            rivals.append(file)
            monkeypatch.setattr(cache_module.os, "getpid", lambda: 424242)
            build_cache(sample, cfg, tmp_path / "c", workers=1)

    monkeypatch.setattr(cache_module.np, "savez", savez_while_a_rival_finishes)
    cache = build_cache(sample, cfg, tmp_path / "c", workers=1)
    assert len(cache.labels) == 1
    assert [p.name.count(".") for p in (tmp_path / "c").iterdir()] == [1]  # one cache, no partial file left


def test_a_changed_subject_or_attribute_column_builds_a_new_cache(tmp_path, write_image):
    """The cache stores subjects and attributes: a CSV that adds a subject column must not be
    served the old cache's empty subjects (one person could then straddle the split)."""
    path = str(write_image(tmp_path / "a.png", np.full((40, 40, 3), 120, np.uint8)))
    cfg = PreprocessConfig.for_modality("fingerprint")
    cache_dir = tmp_path / "cache"
    plain = build_cache([Sample(path=path, label=0)], cfg, cache_dir, workers=1)
    with_subject = build_cache([Sample(path=path, label=0, subject="s1")], cfg, cache_dir, workers=1)
    with_age = build_cache([Sample(path=path, label=0, subject="s1", attrs={"age": "30"})], cfg, cache_dir, workers=1)
    assert plain.subjects.tolist() == [""] and with_subject.subjects.tolist() == ["s1"]
    assert with_age.attrs == [{"age": "30"}]
    assert len(list(cache_dir.glob("*.npz"))) == 3


def test_a_file_replaced_by_one_of_the_same_size_builds_a_new_cache(tmp_path, write_image):
    """SOCOFing's prints all have one size: an edited print must not be served its old crop."""
    path = tmp_path / "a.bmp"  # uncompressed: the same size whatever the pixels
    cfg = PreprocessConfig.for_modality("fingerprint")
    write_image(path, np.full((40, 40, 3), 120, np.uint8))
    first = build_cache([Sample(path=str(path), label=0)], cfg, tmp_path / "cache", workers=1)
    size = path.stat().st_size
    write_image(path, np.full((40, 40, 3), 200, np.uint8))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a later edit
    assert path.stat().st_size == size
    second = build_cache([Sample(path=str(path), label=0)], cfg, tmp_path / "cache", workers=1)
    assert first.images.mean() < second.images.mean()


def test_a_face_cache_without_faces_found_is_a_warning(tmp_path, write_image, caplog):
    """Prints (or anything but faces) given as faces: the detector finds none, every crop is a
    whole image; said at warning level, with the likely cause."""
    rng = np.random.default_rng(1)
    samples = [
        Sample(
            path=str(write_image(tmp_path / f"{i}.png", rng.integers(0, 256, (40, 36), dtype=np.uint8))), label=i % 2
        )
        for i in range(3)
    ]
    caplog.set_level("WARNING", logger="genderclass")
    build_cache(samples, PreprocessConfig(input_size=16, detect=False), tmp_path / "undetected", workers=1)
    assert "face detector" not in caplog.text  # detection off: whole images are meant
    build_cache(samples, PreprocessConfig(input_size=16), tmp_path / "c", workers=1)
    assert "found a face in only 0 of 3 images: are they face photos? (fingerprints: --modality fingerprint)" in (
        caplog.text
    )
    caplog.clear()
    build_cache(samples, PreprocessConfig(input_size=16), tmp_path / "c", workers=1)  # reused: said again
    assert "found a face in only 0 of 3 images" in caplog.text


def test_an_unreadable_cache_file_is_built_again(tmp_path, write_image, caplog):
    """A cache file cut short (a full disk, an interrupted copy) or damaged must not break every
    later run with a traceback: it is reported and replaced by a new build."""
    path = write_image(tmp_path / "x.png", np.full((20, 20, 3), 90, dtype=np.uint8))
    sample = [Sample(path=str(path), label=1)]
    cfg = PreprocessConfig(input_size=16, detect=False)
    first = build_cache(sample, cfg, tmp_path / "c", workers=1)
    (file,) = (tmp_path / "c").glob("*.npz")
    whole = file.read_bytes()
    caplog.set_level("WARNING", logger="genderclass")
    for damaged in (whole[: len(whole) // 2], b"", b"\0" * len(whole)):
        file.write_bytes(damaged)
        again = build_cache(sample, cfg, tmp_path / "c", workers=1)
        np.testing.assert_array_equal(again.images, first.images)
        assert f"cache file {file} is unreadable" in caplog.text
        caplog.clear()
    assert build_cache(sample, cfg, tmp_path / "c", workers=1).labels.tolist() == [1]  # the rebuilt file serves
    assert not caplog.text


def test_a_file_where_the_cache_folder_should_be_is_refused_before_preprocessing(tmp_path, write_image, monkeypatch):
    """Named at once, with the file in the way, not after preprocessing the whole dataset as
    '[Errno 17] File exists'."""
    import genderclass.data.cache as cache_module

    path = write_image(tmp_path / "x.png", np.full((20, 20, 3), 90, dtype=np.uint8))
    (tmp_path / "afile").write_text("")
    processed = []
    monkeypatch.setattr(cache_module, "_process", lambda p: processed.append(p))
    for cache_dir in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'afile'} is a file, not a folder"):
            build_cache([Sample(path=str(path), label=0)], PreprocessConfig(input_size=16), cache_dir, workers=1)
    assert not processed
