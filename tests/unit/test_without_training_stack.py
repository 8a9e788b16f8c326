"""`pip install genderclass` has no torch, onnx or matplotlib: prediction, fusion, the CLI and the
web app must work without them. Run in a fresh interpreter in which importing them fails."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from genderclass.inference.bundled import bundled_models

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, io, json, sys

    BLOCKED = {"torch", "torchvision", "lightning", "torchmetrics", "onnx", "matplotlib", "imagehash"}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed (blocked by the test)")

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
    code = main(["-q", "predict", "--no-detect", sys.argv[1]])
    app = create_app()
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
    print(json.dumps({"face": face, "person": person, "cli": code, "app": type(app).__name__, "loaded": loaded}))
    """
)


@pytest.mark.skipif(not {"face", "fingerprint"} <= set(bundled_models()), reason="needs both bundled models")
def test_predict_fuse_cli_and_app_without_the_training_stack(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "photo.png")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cli_line, summary_line = done.stdout.strip().splitlines()[-2:]
    summary = json.loads(summary_line)
    assert summary["loaded"] == []
    assert summary["face"]["error"] is None and len(summary["face"]["faces"]) == 1
    assert summary["person"]["n"] == 3 and summary["person"]["label"] in ("male", "female", "uncertain")
    assert summary["cli"] == 0 and json.loads(cli_line)["faces"][0]["label"] in ("male", "female", "uncertain")
    assert summary["app"] == "FastAPI"
