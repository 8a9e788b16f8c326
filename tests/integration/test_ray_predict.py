"""``predict --engine ray`` and ``predict_dataset``: the same results as the local engine, on a
local Ray cluster (two CPUs), with Parquet output, URIs and a worker that dies mid-batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pq = pytest.importorskip("pyarrow.parquet")

from genderclass.inference.ray_engine import Predictor, predict_dataset, result_from_row  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module; the in-process CLI joins it (as it joins any already started)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=150 * 1024 * 1024)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Twelve small photos in two folders, and one file that is no image."""
    from tests.conftest import colour_image, save_image

    root = tmp_path_factory.mktemp("photos")
    for i in range(12):
        save_image(root / ("a" if i % 2 else "b") / f"{i:02d}.png", colour_image(40, 40, (20 * i, 90, 200), seed=i))
    (root / "b" / "broken.png").write_bytes(b"not an image")
    return root


def _lines(run_cli, argv) -> tuple[int, list[dict]]:
    code, out = run_cli(argv)
    return code, [json.loads(line) for line in out.splitlines()]


def _local(run_cli, photos, model, *more) -> tuple[int, list[dict]]:
    return _lines(run_cli, ["predict", photos, "--model", model, "--no-detect", *more])


def test_ray_engine_prints_the_local_lines(ray_cluster, run_cli, photos, tiny_face_model):
    code, local = _local(run_cli, photos, tiny_face_model)
    ray_code, ordered = _local(run_cli, photos, tiny_face_model, "--engine", "ray", "--ordered", "--batch-size", "4")
    assert code == ray_code == 1  # the broken file, reported on its own line by both
    assert ordered == local and len(local) == 13
    assert sum(bool(line["error"]) for line in local) == 1
    _, unordered = _local(run_cli, photos, tiny_face_model, "--engine", "ray", "--workers", "2", "--batch-size", "3")
    assert sorted(unordered, key=lambda line: line["path"]) == sorted(local, key=lambda line: line["path"])


def test_ray_engine_detects_faces_as_the_local_engine_does(ray_cluster, run_cli, photos, tmp_path):
    # the bundled face model with its detector running inside the actors, on photos with a drawn
    # face (found) and on flat colours (none found)
    from tests.conftest import save_image
    from tests.web.webcorpus import face_photo

    for seed in range(3):
        save_image(tmp_path / f"face{seed}.jpg", face_photo(seed=seed))
    inputs = [photos / "a", tmp_path]
    code, on_ray = _lines(run_cli, ["predict", *inputs, "--ordered", "--engine", "ray"])
    assert (code, on_ray) == _lines(run_cli, ["predict", *inputs])
    found = [len(line["faces"]) for line in on_ray]
    assert found == [0] * 6 + [1] * 3


def test_summary_is_the_same_on_both_engines(ray_cluster, run_cli, photos, tiny_face_model):
    _, local = _local(run_cli, photos, tiny_face_model, "--summary")
    _, on_ray = _local(run_cli, photos, tiny_face_model, "--summary", "--engine", "ray")
    assert "summary" in local[-1] and local[-1] == on_ray[-1]
    assert local[-1]["summary"]["files"] == 13 and local[-1]["summary"]["files_failed"] == 1


def test_out_writes_parquet_shards_with_every_file(ray_cluster, run_cli, photos, tiny_face_model, tmp_path):
    _, local = _local(run_cli, photos, tiny_face_model)
    out = tmp_path / "results"
    code, lines = _local(run_cli, photos, tiny_face_model, "--engine", "ray", "--out", out, "--summary")
    assert code == 1
    assert lines[0] == {"out": str(out), "files": 13, "failed": 1} and "summary" in lines[1]
    table = pq.read_table(out)
    assert table.column_names == ["path", "faces", "error"]
    rows = [result_from_row(row) for row in table.to_pylist()]
    assert sorted(rows, key=lambda r: r["path"]) == sorted(local, key=lambda r: r["path"])
    code, _ = _local(run_cli, photos, tiny_face_model, "--engine", "ray", "--out", out)
    assert code == 2  # a folder that holds results already is not mixed into


def test_uris_are_read_by_ray(ray_cluster, run_cli, photos, tiny_face_model):
    uri = f"file://{photos / 'a'}/"
    code, lines = _local(run_cli, uri, tiny_face_model, "--engine", "ray")
    assert code == 0 and len(lines) == 6
    assert all(line["path"].startswith(f"file://{photos}/a/") for line in lines)
    by_name = {Path(line["path"]).name: line["faces"] for line in _local(run_cli, photos / "a", tiny_face_model)[1]}
    assert {Path(line["path"]).name: line["faces"] for line in lines} == by_name


def test_flags_that_need_one_engine_are_refused(run_cli, photos, tiny_face_model):
    assert run_cli(["predict", photos, "--model", tiny_face_model, "--workers", "2"])[0] == 2
    assert run_cli(["predict", photos, "--model", tiny_face_model, "--out", "x"])[0] == 2
    assert run_cli(["predict", photos, "--model", tiny_face_model, "--engine", "ray", "--annotate", "a"])[0] == 2
    assert run_cli(["predict", photos, "--engine", "ray", "--out", "x", "--format", "csv"])[0] == 2


def test_predict_dataset_takes_paths_bytes_or_decoded_images(ray_cluster, photos, tiny_face_model):
    from genderclass.inference.classifier import GenderClassifier

    clf = GenderClassifier.load(tiny_face_model)
    files = sorted((photos / "a").glob("*.png"))
    expected = {f.name: clf.predict(f, detect=False)["faces"] for f in files}
    datasets = {
        "item": ray.data.from_items([str(f) for f in files]),
        "bytes": ray.data.read_binary_files(str(photos / "a"), include_paths=True),
        "image": ray.data.read_images(str(photos / "a"), include_paths=True, mode="RGB"),
    }
    for column, dataset in datasets.items():
        rows = predict_dataset(dataset, tiny_face_model, detect=False, workers=1).take_all()
        got = {Path(row["path"]).name: result_from_row(row)["faces"] for row in rows}
        assert got.keys() == expected.keys(), column
        for name, faces in got.items():
            assert [f["label"] for f in faces] == [f["label"] for f in expected[name]], (column, name)
            assert np.allclose([f["p_female"] for f in faces], [f["p_female"] for f in expected[name]], atol=1e-5)


class CrashOnce(Predictor):
    """Kills its own worker process in its first batch (once per marker file), as a failing node would."""

    marker = ""

    def __call__(self, batch):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().__call__(batch)
        os._exit(1)


def test_a_worker_that_dies_loses_no_file(ray_cluster, photos, tiny_face_model, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    crash = type("CrashOnce", (CrashOnce,), {"marker": str(tmp_path / "crashed")})
    files = sorted(str(f) for f in photos.rglob("*.png"))
    dataset = ray.data.from_items([{"path": f} for f in files], override_num_blocks=4)
    rows = predict_dataset(dataset, tiny_face_model, detect=False, workers=1, batch_size=4, predictor=crash).take_all()
    assert (tmp_path / "crashed").exists()  # a worker did die
    assert sorted(row["path"] for row in rows) == files  # every file once: the batch ran again


def test_the_cli_starts_and_stops_its_own_local_cluster(photos, tiny_face_model):
    command = [sys.executable, "-m", "genderclass", "-q", "predict", str(photos / "a"), "--model",
               str(tiny_face_model), "--no-detect", "--engine", "ray", "--workers", "1", "--ordered"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(line["path"]).name for line in lines] == sorted(f.name for f in (photos / "a").glob("*.png"))
