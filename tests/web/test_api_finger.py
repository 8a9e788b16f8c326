"""The web API's ``finger`` field (fingerprints with per-finger calibration)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from webcorpus import encode

from genderclass.web.app import create_app
from genderclass.web.settings import WebSettings

OFFSETS = {"thumb": -1.0, "index": 0.25, "middle": 0.0, "ring": 0.0, "little": 1.0}


@pytest.fixture
def finger_model(tiny_fingerprint_model, tmp_path) -> Path:
    path = tmp_path / "fp.onnx"
    shutil.copy(tiny_fingerprint_model, path)
    meta = json.loads(tiny_fingerprint_model.with_suffix(".json").read_text())
    known = {"offsets": OFFSETS, "temperature": 0.8, "threshold": 0.4, "min_confidence": 0.0}
    path.with_suffix(".json").write_text(json.dumps({**meta, "finger_known": known}))
    return path


def _print(seed: int) -> np.ndarray:
    gray = np.random.default_rng(seed).integers(0, 256, (103, 96), dtype=np.uint8)
    return np.dstack([gray] * 3)


def test_web_api_finger_field(finger_model, tiny_face_model):
    app = create_app(WebSettings(face_model=str(tiny_face_model), fingerprint_model=str(finger_model)))
    png = encode(Image.fromarray(_print(5)), "PNG")
    with TestClient(app) as client:

        def post(**fields):
            return client.post("/api/v1/predict", files={"file": ("p.png", png, "image/png")}, data=fields)

        answer = post(modality="fingerprint", finger="Ring")
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["faces"][0]["finger"] == "ring"
        assert post(modality="fingerprint").json()["results"][0]["faces"][0]["finger"] is None
        for fields, message in (
            ({"modality": "fingerprint", "finger": "toe"}, "finger must be one of thumb"),
            ({"modality": "face", "finger": "thumb"}, "finger is for fingerprints"),
        ):
            refused = post(**fields)
            assert refused.status_code == 422 and message in refused.json()["error"]["message"]
        models = client.get("/api/v1/models").json()["models"]
        assert {m["modality"]: m["info"]["fingers"] for m in models} == {"face": [], "fingerprint": list(OFFSETS)}
        assert {m["modality"]: m["info"]["finger_threshold"] for m in models} == {"face": None, "fingerprint": 0.4}
