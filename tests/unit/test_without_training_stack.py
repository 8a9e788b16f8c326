"""`pip install genderclass` has no torch, onnx or matplotlib: prediction, fusion, the CLI and the
web app must work without them. Run in a fresh interpreter in which importing them fails."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import genderclass
from genderclass.inference.bundled import bundled_models

SCRIPT = textwrap.dedent(
    """
    import contextlib, importlib.abc, io, json, sys

    BLOCKED = {"torch", "torchvision", "lightning", "torchmetrics", "onnx", "matplotlib", "imagehash", "ray", "pyarrow",
               "pandas"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:  # as Python says of a module that is not installed
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)

    sys.meta_path.insert(0, Blocker())

    import numpy as np
    from PIL import Image

    from genderclass.cli.main import main
    from genderclass.inference.classifier import GenderClassifier
    from genderclass.web.app import create_app

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    face = GenderClassifier.load().predict(photo, detect=False)
    prints = [rng.integers(0, 256, (103, 96, 3), dtype=np.uint8) for _ in range(3)]
    person = GenderClassifier.load(modality="fingerprint").predict_person(prints)
    Image.fromarray(photo).save(sys.argv[1])
    Image.fromarray(prints[0]).save(sys.argv[2])
    Image.fromarray(prints[1]).save(sys.argv[3])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        codes = [
            main(["-q", "predict", "--no-detect", sys.argv[1]]),
            main(["-q", "predict", "--modality", "fingerprint", "--fuse", sys.argv[2], sys.argv[3]]),
            main(["-q", "info"]),
            main(["-q", "card", "--modality", "face", "--out", sys.argv[4]]),
            main(["-q", "predict", "--no-detect", "--summary", sys.argv[1]]),
            main(["-q", "predict", "--no-detect", "--engine", "ray", sys.argv[1]]),  # the 'ray' extra is missing
        ]
    app = create_app()
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        upload = [("file", ("p.png", open(sys.argv[2], "rb").read(), "image/png"))]
        web = client.post("/api/v1/predict", files=upload, data={"modality": "fingerprint"}).status_code
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    summary = {"face": face, "person": person, "cli": codes, "web": web, "loaded": loaded}
    print(json.dumps({**summary, "stdout": out.getvalue().splitlines()}))
    """
)


@pytest.mark.skipif(not {"face", "fingerprint"} <= set(bundled_models()), reason="needs both bundled models")
def test_predict_fuse_cli_and_app_without_the_training_stack(tmp_path):
    files = [str(tmp_path / name) for name in ("photo.png", "print1.png", "print2.png")] + [f"{tmp_path}/cards/"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, *files], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["loaded"] == []
    assert summary["face"]["error"] is None and len(summary["face"]["faces"]) == 1
    assert summary["person"]["n"] == 3 and summary["person"]["label"] in ("male", "female", "uncertain")
    assert summary["cli"] == [0, 0, 0, 0, 0, 3] and summary["web"] == 200
    assert "pip install 'genderclass[ray]'" in done.stderr
    assert "summary" in json.loads(summary["stdout"][-1])
    photo_line, print1, print2, person_line = (json.loads(line) for line in summary["stdout"][:4])
    assert photo_line["faces"][0]["label"] in ("male", "female", "uncertain") and person_line["n"] == 2
    assert (
        any(line.startswith("[face]") for line in summary["stdout"]) and (tmp_path / "cards" / "face_card.md").is_file()
    )


DEPENDENCIES_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, importlib.metadata, json, re, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {"torch", "lightning", "onnx", "matplotlib", "yuface"}:
                raise ImportError(f"{name} is not installed (blocked by the test)")

    sys.meta_path.insert(0, Blocker())

    import numpy as np

    import genderclass.cli.main
    import genderclass.web.cli
    from genderclass.inference.classifier import GenderClassifier
    from genderclass.web.app import create_app

    photo = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    GenderClassifier.load().predict(photo)  # the face detector runs
    create_app()
    by_module = importlib.metadata.packages_distributions()
    used = {dist for name in list(sys.modules) for dist in by_module.get(name.split(".")[0], [])}
    from genderclass.faces.detect import default_detector

    try:
        default_detector(backend="libfacedetection")
        native = None
    except ImportError as exc:
        native = str(exc)
    used = sorted(re.sub(r"[-_.]+", "-", dist).lower() for dist in used)
    print(json.dumps({"used": used, "native": native}))
    """
)
# core dependencies that the script cannot see imported: ``serve`` imports uvicorn to run the app
USED_OUTSIDE_THE_SCRIPT = {"uvicorn"}


@pytest.mark.skipif("face" not in bundled_models(), reason="needs the bundled face model")
def test_every_core_dependency_is_used_by_prediction_or_the_web_app(repo_root):
    """``pip install genderclass`` must not pull a package that only an optional path needs (yuface,
    the native detector backend, has wheels for few platforms and Python versions)."""
    import re
    import tomllib

    core = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", spec).group()).lower() for spec in core}
    done = subprocess.run([sys.executable, "-c", DEPENDENCIES_SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert names - set(summary["used"]) - USED_OUTSIDE_THE_SCRIPT == set()
    assert "genderclass[libfacedetection]" in summary["native"]  # the optional backend names its extra


def test_the_package_declares_its_type_hints(repo_root):
    """PEP 561: without ``py.typed`` in the installed package, type checkers ignore the annotations of
    ``GenderClassifier`` and the rest for users of the library."""
    import fnmatch
    import tomllib

    from genderclass.inference import classifier

    package = Path(classifier.__file__).parents[1]
    assert (package / "py.typed").is_file()
    patterns = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch("py.typed", pattern) for pattern in patterns["genderclass"])


def test_the_package_metadata_names_its_licences_and_one_version(repo_root):
    """The SPDX licence expression's files exist (a build fails on a missing one), and the installed
    version is ``genderclass.__version__``, its single source."""
    import tomllib
    from importlib.metadata import version

    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert version("genderclass") == genderclass.__version__
    assert project["license"].startswith("MIT AND ")
    for name in project["license-files"]:
        assert (repo_root / name).is_file(), name


def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "genderclass", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: genderclass")
