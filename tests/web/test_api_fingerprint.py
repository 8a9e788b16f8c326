"""The web API's fingerprint fields: ``finger`` (per-finger calibration) and ``fuse`` (one person)."""

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
        ring = answer.json()["results"][0]["faces"][0]
        plain = post(modality="fingerprint").json()["results"][0]["faces"][0]
        assert ring["finger"] == "ring" and plain["finger"] is None
        assert ring["p_female"] != plain["p_female"]  # another calibration (temperature 0.8)
        for fields, message in (
            ({"modality": "fingerprint", "finger": "toe"}, "finger must be one of thumb"),
            ({"modality": "face", "finger": "thumb"}, "finger is for fingerprints"),
        ):
            refused = post(**fields)
            assert refused.status_code == 422 and message in refused.json()["error"]["message"]
        models = client.get("/api/v1/models").json()["models"]
        assert {m["modality"]: m["info"]["fingers"] for m in models} == {"face": [], "fingerprint": list(OFFSETS)}
        assert {m["modality"]: m["info"]["finger_threshold"] for m in models} == {"face": None, "fingerprint": 0.4}


def test_web_api_fuses_one_persons_prints(finger_model, tiny_face_model, caplog):
    """fuse=true: the answer's person is the mean logit of the classified uploads with the fusion
    temperature, as GenderClassifier.predict_person gives; a file uploaded twice counts once (the
    server's log names it by its place in the request, not its file name), and a broken one is left out."""
    from genderclass.inference.classifier import GenderClassifier

    app = create_app(WebSettings(face_model=str(tiny_face_model), fingerprint_model=str(finger_model)))
    prints = [_print(seed) for seed in (6, 7)]
    pngs = [encode(Image.fromarray(p), "PNG") for p in prints]
    files = [("file", (f"{i}.png", png, "image/png")) for i, png in enumerate([*pngs, pngs[0]])]
    files.append(("file", ("broken.png", b"\x89PNG\r\n\x1a\n broken", "image/png")))
    with TestClient(app) as client:
        answer = client.post("/api/v1/predict", files=files, data={"modality": "fingerprint", "fuse": "true"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [r["error"] is None for r in body["results"]] == [True, True, True, False]
        person = body["person"]
        assert person["filenames"] == ["0.png", "1.png"] and person["n"] == 2
        assert "upload 3 repeats upload 1" in caplog.text and ".png" not in caplog.text
        expected = GenderClassifier.load(finger_model).predict_person(prints)
        assert person["p_female"] == pytest.approx(expected["p_female"], abs=1e-6)
        assert person["label"] == expected["label"]
        refused = client.post("/api/v1/predict", files=files[:1], data={"modality": "face", "fuse": "true"})
        assert refused.status_code == 422 and "fuse is for fingerprints" in refused.json()["error"]["message"]
        alone = client.post("/api/v1/predict", files=files[:1], data={"modality": "fingerprint"})
        assert alone.json()["person"] is None
        broken = [
            ("file", ("broken.png", b"\x89PNG\r\n\x1a\n broken", "image/png")),
            ("file", ("notes.png", b"text", "image/png")),
        ]
        nobody = client.post("/api/v1/predict", files=broken, data={"modality": "fingerprint", "fuse": "true"})
        assert nobody.status_code == 422 and nobody.json()["error"]["code"] == "no_usable_print"
        assert (
            "broken.png: " in nobody.json()["error"]["message"] and "notes.png: " in nobody.json()["error"]["message"]
        )


def test_web_api_person_honours_finger_and_min_confidence(finger_model, tiny_face_model):
    """fuse=true with a finger: the person is fused with that finger's offset removed (and the
    calibration without offsets), and min_confidence applies to the person as to each print."""
    from genderclass.inference.classifier import GenderClassifier

    app = create_app(WebSettings(face_model=str(tiny_face_model), fingerprint_model=str(finger_model)))
    prints = [_print(seed) for seed in (10, 11)]
    files = [("file", (f"{i}.png", encode(Image.fromarray(p), "PNG"), "image/png")) for i, p in enumerate(prints)]
    clf = GenderClassifier.load(finger_model)
    with TestClient(app) as client:

        def person(**fields):
            answer = client.post(
                "/api/v1/predict", files=files, data={"modality": "fingerprint", "fuse": "true", **fields}
            )
            assert answer.status_code == 200, answer.text
            return answer.json()["person"]

        thumb = person(finger="thumb", min_confidence="0")
        expected = clf.predict_person(prints, min_confidence=0, fingers=["thumb", "thumb"])
        assert thumb["p_female"] == pytest.approx(expected["p_female"], abs=1e-6)
        assert thumb["p_female"] != pytest.approx(clf.predict_person(prints, min_confidence=0)["p_female"], abs=1e-3)
        assert thumb["label"] == expected["label"] != "uncertain"
        assert person(finger="thumb", min_confidence="1")["label"] == "uncertain"
        assert person(min_confidence="1")["label"] == "uncertain"
        assert person(min_confidence="0")["label"] in ("male", "female")


def test_web_api_finger_needs_a_model_with_offsets(tiny_fingerprint_model, tiny_face_model):
    app = create_app(WebSettings(face_model=str(tiny_face_model), fingerprint_model=str(tiny_fingerprint_model)))
    png = encode(Image.fromarray(_print(8)), "PNG")
    with TestClient(app) as client:
        answer = client.post(
            "/api/v1/predict",
            files={"file": ("p.png", png, "image/png")},
            data={"modality": "fingerprint", "finger": "thumb"},
        )
        assert answer.status_code == 422
        assert answer.json()["error"]["message"] == "this fingerprint model has no per-finger calibration; omit finger"
