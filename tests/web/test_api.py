"""JSON API: every documented status code, on a generated corpus of good and bad uploads."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from webcorpus import Case, bad_cases, encode, face_photo, good_cases, jpeg_bytes, photo

from genderclass.data.readers import FINGERS
from genderclass.web.app import create_app
from genderclass.web.settings import WebSettings

PREDICT = "/api/v1/predict"
LABELS = {"male", "female", "uncertain"}
GOOD, BAD = good_cases(), bad_cases()


def post(client: TestClient, files: list[tuple[str, bytes, str]], **fields):
    return client.post(PREDICT, files=[("file", f) for f in files], data={k: str(v) for k, v in fields.items()})


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_predict_schema(body: dict, n_files: int) -> None:
    assert set(body) == {"results", "person", "model", "elapsed_ms"}
    assert body["person"] is None  # only with fuse=true
    assert isinstance(body["elapsed_ms"], float) and body["elapsed_ms"] >= 0
    assert body["model"]["modality"] in ("face", "fingerprint")
    assert "/" not in body["model"]["path"] and "\\" not in body["model"]["path"]  # no server paths
    assert set(body["model"]) == {
        "name",
        "modality",
        "path",
        "labels",
        "threshold",
        "min_confidence",
        "finger_threshold",
    }
    assert len(body["results"]) == n_files
    for result in body["results"]:
        assert {"filename", "faces", "error"} <= set(result)
        assert isinstance(result["filename"], str)
        if result["error"] is not None:
            assert isinstance(result["error"], str) and result["faces"] == []
            continue
        width, height = result["image_size"]
        for face in result["faces"]:
            assert set(face) == {"box", "label", "p_female", "confidence", "finger"}
            assert face["finger"] is None or face["finger"] in FINGERS
            x1, y1, x2, y2 = face["box"]
            assert all(isinstance(v, int) for v in face["box"])
            assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
            assert face["label"] in LABELS
            assert 0.0 <= face["p_female"] <= 1.0 and 0.5 <= face["confidence"] <= 1.0
            # the label's probability with the log-odds shifted so the model's threshold sits at 0.5
            p, t = face["p_female"], body["model"]["threshold"]
            q = p * (1 - t) / (p * (1 - t) + (1 - p) * t)
            assert math.isclose(face["confidence"], max(q, 1 - q), abs_tol=1e-5)


# ------------------------------------------------------------------------------ one file per request
def test_corpus_is_big_enough():
    assert len(GOOD) + len(BAD) >= 20
    assert len({c.name for c in GOOD + BAD}) == len(GOOD + BAD)


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.name)
def test_good_image_is_classified(client, case: Case):
    response = post(client, [(case.filename, case.data, case.content_type)])
    assert response.status_code == 200, response.text
    body = response.json()
    assert_predict_schema(body, 1)
    result = body["results"][0]
    assert result["error"] is None
    assert result["filename"] == case.filename
    assert result["image_size"] == list(case.size)  # EXIF orientation applied before anything else


@pytest.mark.parametrize("case", GOOD, ids=lambda c: c.name)
def test_good_image_without_detection_is_one_whole_image_crop(client, case: Case):
    response = post(client, [(case.filename, case.data, case.content_type)], detect="false")
    assert response.status_code == 200, response.text
    faces = response.json()["results"][0]["faces"]
    assert len(faces) == 1
    assert faces[0]["box"] == [0, 0, *case.size]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_face_is_found_and_boxed(client, fmt):
    image = encode(Image.fromarray(face_photo(640, 480, seed=1)), fmt)
    response = post(client, [("face." + fmt.lower(), image, "image/" + fmt.lower())])
    assert response.status_code == 200, response.text
    body = response.json()
    assert_predict_schema(body, 1)
    faces = body["results"][0]["faces"]
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0]["box"]
    assert x1 < 320 < x2 and y1 < 240 < y2  # the face drawn in the middle


@pytest.mark.parametrize("case", BAD, ids=lambda c: c.name)
def test_bad_upload_answers_its_status(client, case: Case):
    response = post(client, [(case.filename, case.data, case.content_type)])
    assert_error(response, case.status, case.code)


def test_broken_gif_that_crashes_the_gif_plugin_is_a_corrupt_image(client):
    # Pillow raises IndexError (not OSError) while probing frames of this GIF: still a 422, not a 500.
    gif = bytearray(next(c for c in GOOD if c.name == "animated-gif").data)
    first_frame_end = gif.index(b"\x00\x21\xf9", 800) + 1  # end of the first frame's image data
    broken = bytes(gif[:first_frame_end]) + b"\x21"  # an extension introducer and then nothing
    response = post(client, [("broken.gif", broken, "image/gif")])
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_error(response, 422, "corrupt_image")


def test_a_decoder_crash_is_logged_by_the_uploads_place_not_its_name(client, monkeypatch, caplog):
    """Whatever else the decoder raises is a 422; the server's log names the upload by its place in
    the request, never by its (possibly personal) file name."""
    from genderclass.web import service as web_service

    real = web_service.load_image

    def choke_on_second(data, max_pixels):
        if data == b"second":
            raise IndexError("tile index out of range")
        return real(data, max_pixels=max_pixels)

    monkeypatch.setattr(web_service, "load_image", choke_on_second)
    first = next(c for c in GOOD if c.name == "animated-gif")
    response = post(
        client, [(first.filename, first.data, first.content_type), ("jane_doe.png", b"second", "image/png")]
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][1]["error_code"] == "corrupt_image"
    assert "decoder error on upload 2 of 2: IndexError" in caplog.text and "jane_doe" not in caplog.text


def test_very_thin_image_is_classified(client):
    thin = encode(Image.fromarray(np.zeros((2, 4000, 3), np.uint8)), "PNG")
    response = post(client, [("thin.png", thin, "image/png")])
    assert response.status_code == 200, response.text


def test_internal_error_is_json_500_and_spares_the_other_files(client, monkeypatch):
    """An unexpected failure inside the model for one image: 500 JSON alone, per-file error among several."""
    from genderclass.inference.classifier import GenderClassifier

    real_predict = GenderClassifier.predict_batch_with_logits

    def flaky_predict(self, images, *args, **kwargs):
        if images[0].shape[1] == 333:  # the 333-px-wide upload triggers a bug
            raise RuntimeError("simulated model failure")
        return real_predict(self, images, *args, **kwargs)

    monkeypatch.setattr(GenderClassifier, "predict_batch_with_logits", flaky_predict)
    bad = encode(Image.fromarray(np.zeros((50, 333, 3), np.uint8)), "PNG")
    response = post(client, [("bad.png", bad, "image/png")])
    assert_error(response, 500, "internal_error")
    assert "simulated" not in response.text  # internals are logged, not sent
    response = post(client, [("bad.png", bad, "image/png"), ("ok.jpg", jpeg_bytes(), "image/jpeg")])
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["error_code"] == "internal_error" and results[1]["error"] is None


def test_a_model_that_returns_nan_is_a_500_model_error_not_a_crash(tmp_path):
    from webtools import build_tiny_model

    model = build_tiny_model(tmp_path / "run", scale=math.nan)
    with TestClient(create_app(WebSettings(face_model=str(model), preload=False))) as test_client:
        response = post(test_client, [("ok.jpg", jpeg_bytes(), "image/jpeg")], detect="false")
        assert "not a finite number" in assert_error(response, 500, "model_error")["message"]


def test_a_model_error_on_one_of_several_files_is_that_file_s_error(client, monkeypatch):
    from genderclass.inference.classifier import NON_FINITE_OUTPUT, GenderClassifier

    real_predict = GenderClassifier.predict_batch_with_logits

    def predict(self, images, *args, **kwargs):
        if images[0].shape[1] == 333:  # the 333-px-wide upload gets no finite score
            return [({"path": None, "faces": [], "error": NON_FINITE_OUTPUT}, np.zeros(0, np.float32))]
        return real_predict(self, images, *args, **kwargs)

    monkeypatch.setattr(GenderClassifier, "predict_batch_with_logits", predict)
    bad = encode(Image.fromarray(np.zeros((50, 333, 3), np.uint8)), "PNG")
    response = post(client, [("bad.png", bad, "image/png"), ("ok.jpg", jpeg_bytes(), "image/jpeg")])
    assert response.status_code == 200
    bad_result, ok_result = response.json()["results"]
    assert (bad_result["error_code"], bad_result["faces"]) == ("model_error", [])
    assert ok_result["error"] is None and ok_result["error_code"] is None


# ------------------------------------------------------------------------------ several files
def test_several_files_with_bad_ones_answer_200_with_per_file_errors(client):
    uploads = [
        ("a.jpg", jpeg_bytes(seed=1), "image/jpeg"),
        ("notes.txt", b"hello", "text/plain"),
        ("b.png", encode(Image.fromarray(photo(200, 150, 4)), "PNG"), "image/png"),
        ("huge.png", next(c for c in BAD if c.name == "png-header-20000x20000").data, "image/png"),
    ]
    response = post(client, uploads)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_predict_schema(body, 4)
    results = body["results"]
    assert [r["filename"] for r in results] == ["a.jpg", "notes.txt", "b.png", "huge.png"]
    assert results[0]["error"] is None and results[2]["error"] is None
    assert results[1]["error_code"] == "unsupported_media_type" and results[1]["error"]
    assert results[3]["error_code"] == "image_too_large"


def test_all_files_bad_is_still_200_with_several(client):
    response = post(client, [("a.txt", b"x", "text/plain"), ("b.txt", b"y", "text/plain")])
    assert response.status_code == 200
    assert all(r["error"] for r in response.json()["results"])


def test_too_many_files(client, web_settings):
    uploads = [(f"{i}.txt", b"x", "text/plain") for i in range(web_settings.max_files + 1)]
    assert_error(post(client, uploads), 422, "too_many_files")


# ------------------------------------------------------------------------------ options
def test_min_confidence_one_makes_every_label_uncertain(client):
    response = post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], detect="false", min_confidence=1)
    faces = response.json()["results"][0]["faces"]
    assert faces and all(f["label"] == "uncertain" for f in faces)


def test_min_confidence_zero_never_says_uncertain(client):
    response = post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], detect="false", min_confidence=0)
    faces = response.json()["results"][0]["faces"]
    assert faces and all(f["label"] in ("male", "female") for f in faces)


@pytest.mark.parametrize("value", ["2", "-0.1", "nan", "abc", "inf"])
def test_bad_min_confidence(client, value):
    assert_error(post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], min_confidence=value), 422, "invalid_request")


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_detect(client, value):
    assert_error(post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], detect=value), 422, "invalid_request")


@pytest.mark.parametrize("value", ["cat", "FACE ", "../face", ""])
def test_modality_values(client, value):
    response = post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], modality=value)
    if value.strip().lower() in ("face", ""):  # case and blanks are forgiven; empty = default
        assert response.status_code == 200
    else:
        assert_error(response, 422, "invalid_modality")


def test_fingerprint_modality(client):
    models = client.get("/api/v1/models").json()
    available = {m["modality"] for m in models["models"]}
    response = post(
        client, [("print.png", encode(Image.fromarray(photo(96, 103)), "PNG"), "image/png")], modality="fingerprint"
    )
    if "fingerprint" not in available:
        assert_error(response, 422, "model_unavailable")
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["modality"] == "fingerprint"
    assert_predict_schema(body, 1)
    assert len(body["results"][0]["faces"]) == 1  # fingerprints: the whole image, never detection


# ------------------------------------------------------------------------------ request shape
def test_missing_file_field(client):
    assert_error(client.post(PREDICT, data={"modality": "face"}), 422, "missing_file")


def test_the_schema_requires_a_file_part_as_the_server_does(client):
    """A form without a file part is refused (422): the spec must not call it valid, as it did with
    a required but possibly empty list of files."""
    form = client.get("/openapi.json").json()["paths"][PREDICT]["post"]["requestBody"]
    schema = form["content"]["multipart/form-data"]["schema"]
    assert form["required"] is True and "file" in schema["required"]
    assert schema["properties"]["file"]["type"] == "array" and schema["properties"]["file"]["minItems"] == 1
    no_file = client.post(PREDICT, files=[("modality", (None, b"face"))])  # multipart, with no file part
    assert "no file uploaded" in assert_error(no_file, 422, "missing_file")["message"]
    one_file = post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], modality="face")
    assert one_file.status_code == 200, one_file.text


def test_file_under_another_field_name_is_not_a_file(client):
    for size in (64, 1024):  # a small file, and one larger than any form field may be
        response = client.post(PREDICT, files={"image": ("a.jpg", jpeg_bytes(size, size), "image/jpeg")})
        assert "form field 'image'" in assert_error(response, 422, "unknown_field")["message"]


def test_empty_body(client):
    assert_error(client.post(PREDICT), 415, "unsupported_content_type")


def test_json_body_is_refused(client):
    assert_error(client.post(PREDICT, json={"file": "/etc/hostname"}), 415, "unsupported_content_type")


@pytest.mark.parametrize("text", ["/etc/passwd", "http://127.0.0.1:8000/static/app.css", "file:///etc/hosts"])
def test_server_paths_and_urls_are_only_ever_content(client, text):
    # Sent as the file's content or as a plain form value: never opened or fetched, just not an image.
    response = client.post(PREDICT, files={"file": ("x.jpg", text.encode(), "image/jpeg")})
    assert_error(response, 415, "unsupported_media_type")
    response = client.post(PREDICT, files={"file": (None, text.encode())})  # multipart text field
    assert_error(response, 415, "unsupported_media_type")
    response = client.post(PREDICT, data={"file": text})  # urlencoded: cannot carry a file at all
    assert_error(response, 422, "missing_file")


def test_urlencoded_form_without_files(client):
    assert_error(client.post(PREDICT, data={"modality": "face"}), 422, "missing_file")


def test_urlencoded_body_of_many_fields_is_refused_before_parsing(client):
    # millions of tiny fields in a 10 MiB body held the event loop (and every other request) for seconds
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    many = "&".join(f"f{i}=1" for i in range(101)).encode()
    assert_error(client.post(PREDICT, content=many, headers=urlencoded), 422, "too_many_parts")
    repeated = b"a=1&" * 200_000
    assert_error(client.post(PREDICT, content=repeated, headers=urlencoded), 422, "too_many_parts")


def test_malformed_multipart(client):
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nabc'  # no end
    assert_error(client.post(PREDICT, content=body, headers=headers), 400, "malformed_multipart")
    assert_error(
        client.post(PREDICT, content=b"abc", headers={"content-type": "multipart/form-data"}),
        400,
        "malformed_multipart",
    )
    long = "x" * 300  # the multipart parser refuses boundaries over 256 bytes when it is built
    body = f'--{long}\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc\r\n--{long}--\r\n'.encode()
    headers = {"content-type": f"multipart/form-data; boundary={long}"}
    assert_error(client.post(PREDICT, content=body, headers=headers), 400, "malformed_multipart")


@pytest.mark.parametrize("name", ["../../etc/evil.jpg", "C:\\Users\\me\\evil.jpg"])
def test_filename_is_reduced_to_a_plain_name(client, name):
    response = post(client, [(name, jpeg_bytes(), "image/jpeg")])
    assert response.json()["results"][0]["filename"] == "evil.jpg"


def test_parse_form_drops_control_characters_from_names():
    from genderclass.web.uploads import parse_form

    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x07b\x1b.jpg"\r\n\r\nxyz\r\n'
        b'--b\r\nContent-Disposition: form-data; name="modality"\r\n\r\nface\r\n--b--\r\n'
    )
    form = parse_form(body, "multipart/form-data; boundary=b")
    assert [(f.filename, f.data) for f in form.files] == [("ab.jpg", b"xyz")]
    assert form.fields == {"modality": "face"}


# ------------------------------------------------------------------------------ size limits
@pytest.fixture(scope="module")
def small_limit_client(web_settings):
    settings = WebSettings(
        face_model=web_settings.face_model,
        fingerprint_model=web_settings.fingerprint_model,
        max_upload_bytes=200_000,
        max_pixels=1_000_000,
        threads=1,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_body_over_limit_by_content_length(small_limit_client):
    big = jpeg_bytes(1600, 1200, quality=98)
    assert len(big) > 200_000
    error = assert_error(post(small_limit_client, [("big.jpg", big, "image/jpeg")]), 413, "request_too_large")
    assert "MiB" in error["message"]


def test_body_over_limit_without_content_length(small_limit_client):
    big = jpeg_bytes(1600, 1200, quality=98)
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n' + big + b"\r\n--b--\r\n"

    def chunks():  # a generator body is sent chunked: only counting the bytes can catch it
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = small_limit_client.post(
        PREDICT, content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_error(response, 413, "request_too_large")


def test_pixel_limit_is_configurable(small_limit_client):
    image = encode(Image.new("L", (1200, 1000)), "PNG")  # 1.2 MP declared, tiny file
    assert_error(post(small_limit_client, [("a.png", image, "image/png")]), 413, "image_too_large")


def test_very_long_image_is_refused_not_a_server_error(client):
    image = encode(Image.new("L", (40000, 1)), "PNG")
    for modality in ("face", "fingerprint"):
        response = client.post(
            "/api/v1/predict", files=[("file", ("long.png", image, "image/png"))], data={"modality": modality}
        )
        assert_error(response, 413, "image_too_large")
    # the longest side allowed is still predicted (fingerprints: the whole image is the crop)
    ok = encode(Image.new("L", (32000, 1)), "PNG")
    response = client.post(
        "/api/v1/predict", files=[("file", ("ok.png", ok, "image/png"))], data={"modality": "fingerprint"}
    )
    assert response.status_code == 200


def test_body_under_limit_passes(small_limit_client):
    assert post(small_limit_client, [("a.jpg", jpeg_bytes(), "image/jpeg")]).status_code == 200


# ------------------------------------------------------------------------------ other endpoints
def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and "face" in body["models"] or body["models"]


def test_models_list_the_test_accuracy_by_group(client, face_model):
    info = {m["modality"]: m["info"] for m in client.get("/api/v1/models").json()["models"]}["face"]
    if face_model is not None:  # a generated model records no groups
        assert isinstance(info["test_groups"], dict)
        return
    age = {row["group"]: row for row in info["test_groups"]["age"]}
    assert set(info["test_groups"]) == {"age", "race"}  # single attributes; the crossed tables stay in the card
    assert sum(row["n"] for row in age.values()) == 3184 and age["0-2"]["accuracy"] < age["20-29"]["accuracy"]


def test_models(client):
    body = client.get("/api/v1/models").json()
    assert body["default"] in ("face", "fingerprint")
    assert body["limits"]["max_upload_bytes"] > 0 and body["limits"]["max_pixels"] > 0
    for entry in body["models"]:
        assert entry["loaded"] is True
        info = entry["info"]
        assert info["modality"] == entry["modality"]
        assert "/" not in info["path"]
        assert info["test_accuracy"] is None or 0.0 <= info["test_accuracy"] <= 1.0


def test_model_card_missing_or_html(client, face_model):
    response = client.get("/model-card/face")
    if face_model is None:  # the bundled model, whose card ships beside it
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert "Model card" in response.text
    else:
        assert response.status_code in (200, 404)
    assert_error(client.get("/model-card/..%2F..%2Fetc%2Fpasswd"), 404)
    assert_error(client.get("/model-card/cat"), 404, "not_found")


def test_model_card_next_to_the_model_is_served(tmp_path):
    from webtools import build_tiny_model

    model = build_tiny_model(tmp_path / "run")
    (tmp_path / "run" / "face_card.html").write_text("<!doctype html><title>card</title><h1>Model card</h1>")
    with TestClient(create_app(WebSettings(face_model=str(model), preload=False))) as test_client:
        response = test_client.get("/model-card/face")
        assert response.status_code == 200 and "Model card" in response.text
        assert test_client.get("/api/v1/models").json()["models"][0]["card_url"] == "/model-card/face"
        head = test_client.head("/model-card/face")  # a link checker's request
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")
        assert head.content == b"" and head.headers["content-length"] == response.headers["content-length"]
        assert test_client.head("/model-card/cat").status_code == 404


def test_custom_model_without_a_card_is_not_given_the_bundled_card(tmp_path):
    from webtools import build_tiny_model

    model = build_tiny_model(tmp_path / "run")
    with TestClient(create_app(WebSettings(face_model=str(model), preload=False))) as test_client:
        assert_error(test_client.get("/model-card/face"), 404, "not_found")
        assert test_client.get("/api/v1/models").json()["models"][0]["card_url"] is None


def test_page_and_static_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "What this is and is not for" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert "https://" not in response.text


def test_docs_and_openapi(client):
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        scripts = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text)
        assert scripts, page
        for asset in scripts:  # served by the app itself: the docs work offline
            assert asset.startswith("/"), asset
            assert client.get(asset).status_code == 200, asset
        # anything the pages reference elsewhere (ReDoc's footer logo sits on a CDN) is not fetched
        policy = html.headers["content-security-policy"]
        assert "img-src 'self' data:;" in policy and "default-src 'self'" in policy and "https:" not in policy
    spec = client.get("/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/models", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"]
    # "Try it out" in /docs: a file picker, and the optional fields start empty (= the model's defaults)
    assert body["properties"]["file"]["items"]["format"] == "binary"
    assert body["properties"]["finger"]["default"] == "" and body["properties"]["min_confidence"]["default"] == ""


def test_empty_optional_fields_mean_the_defaults(client):
    response = post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")], finger="", min_confidence="", detect="")
    assert response.status_code == 200
    pattern = client.get("/openapi.json").json()["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]["schema"]["properties"]["min_confidence"]["pattern"]
    import re

    accepted = [v for v in ("", "0", "0.6", "1", "1.0", ".5", "2", "-0.1", "x", "1.5") if re.search(pattern, v)]
    assert accepted == ["", "0", "0.6", "1", "1.0", ".5"]


def test_misspelt_or_misplaced_options_are_refused_not_ignored(client):
    image = [("a.jpg", jpeg_bytes(), "image/jpeg")]
    error = assert_error(post(client, image, modailty="fingerprint"), 422, "unknown_field")
    assert "'modailty'" in error["message"] and "modality" in error["message"]
    response = client.post(PREDICT + "?modality=fingerprint", files=[("file", image[0])])
    assert "not the URL: 'modality'" in assert_error(response, 422, "unknown_field")["message"]
    assert post(client, image, modality="face", detect="true", fuse="false").status_code == 200


def test_an_option_given_twice_is_refused(client):
    image = ("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))
    twice = client.post(PREDICT, files=[image], data={"modality": ["face", "fingerprint"]})
    assert "'modality' given more than once" in assert_error(twice, 422, "duplicate_field")["message"]
    encoded = client.post(
        PREDICT, content=b"modality=face&modality=face", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_error(encoded, 422, "duplicate_field")


def test_answers_are_not_cached(client):
    response = post(client, [("a.jpg", jpeg_bytes(), "image/jpeg")])
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert client.get("/api/v1/models").headers["cache-control"] == "no-store"


def test_sessions_turn_telemetry_off(monkeypatch, tmp_path):
    import onnxruntime
    from webtools import build_tiny_model

    from genderclass.runtime import cpu_session

    calls = []
    monkeypatch.setattr(onnxruntime, "disable_telemetry_events", lambda: calls.append(True))
    session = cpu_session(build_tiny_model(tmp_path / "m"), threads=1)
    assert calls and session.get_session_options().intra_op_num_threads == 1


def test_importing_the_package_leaves_no_telemetry_files(tmp_path):
    """ONNX Runtime, imported with its telemetry on, writes a device id and an event queue under the
    cache folder and a session file in the temp folder: loading and running a model must write none."""
    import os
    import subprocess
    import sys

    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(), tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), TMPDIR=str(tmp))
    code = (
        "import numpy as np\n"
        "from genderclass import GenderClassifier\n"
        "GenderClassifier.load().predict(np.full((64, 64, 3), 127, np.uint8))\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert [p for p in (*home.rglob("*"), *tmp.rglob("*")) if p.is_file()] == []


def test_head_requests_for_monitors(client):
    for path in ("/", "/healthz", "/api/v1/models", "/docs", "/redoc", "/favicon.ico"):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b"", path
    assert not [op for ops in client.get("/openapi.json").json()["paths"].values() for op in ops if op == "head"]


def test_detect_defaults_to_the_model_setting(tmp_path):
    """Omitted, `detect` follows the model's own preprocessing, as the CLI and Python API do."""
    from webtools import build_tiny_model

    from genderclass.inference.classifier import GenderClassifier

    model = build_tiny_model(tmp_path / "run")
    metadata = json.loads(model.with_suffix(".json").read_text())
    metadata["preprocess"]["detect"] = False  # a model of pre-cropped faces: whole images by default
    model.with_suffix(".json").write_text(json.dumps(metadata))
    assert GenderClassifier.load(model).preprocess.detect is False
    with TestClient(create_app(WebSettings(face_model=str(model), preload=False))) as test_client:
        image = [("a.jpg", jpeg_bytes(640, 480), "image/jpeg")]
        omitted = post(test_client, image).json()["results"][0]["faces"]
        assert len(omitted) == 1 and omitted[0]["box"] == [0, 0, 640, 480]  # not searched for faces


def test_a_loopback_server_refuses_other_host_names(face_model, fingerprint_model):
    from genderclass.web.middleware import host_name

    assert [host_name(h) for h in (b"127.0.0.1:8000", b"[::1]:80", b"LocalHost", b"evil.example:8000", b"")] == [
        "127.0.0.1", "[::1]", "localhost", "evil.example", ""
    ]  # fmt: skip
    settings = WebSettings(face_model=face_model, fingerprint_model=fingerprint_model, loopback_only=True)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as local:
        assert local.get("/healthz").status_code == 200
        for name in ("localhost:8000", "[::1]:8000"):
            assert local.get("/healthz", headers={"host": name}).status_code == 200
        for name in ("evil.example", "127.0.0.1.evil.example:8000"):  # a rebound name
            assert_error(local.get("/api/v1/models", headers={"host": name}), 400, "bad_host")


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/nope", 404), ("delete", "/api/v1/predict", 405), ("get", "/api/v1/predict", 405)],
)
def test_http_errors_are_json(client, method, path, status):
    response = getattr(client, method)(path)
    assert_error(response, status)
    if status == 405:  # the JSON body keeps the HTTP error's headers: Allow names the methods there are
        assert "POST" in response.headers["allow"]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/models", {"GET", "HEAD"}),  # two routes: HEAD (no model loading) before GET
        ("/healthz", {"GET", "HEAD"}),
        ("/model-card/face", {"GET", "HEAD"}),
        ("/api/v1/predict", {"POST"}),
    ],
)
def test_a_405_allows_every_method_the_path_answers(client, path, methods):
    """Allow lists the methods of every route on the path, not only of the first one that matched."""
    for method in ("options", "delete"):
        response = getattr(client, method)(path)
        assert_error(response, 405, "method_not_allowed")
        assert {m.strip() for m in response.headers["allow"].split(",")} == methods, (method, path)


def test_unexpected_exception_is_logged_json_500(web_settings, caplog):
    app = create_app(WebSettings(face_model=web_settings.face_model, preload=False))

    def broken(modality):
        raise RuntimeError("boom")

    app.state.registry.get = broken
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = post(test_client, [("a.jpg", jpeg_bytes(), "image/jpeg")])
    error = assert_error(response, 500, "internal_error")
    assert "boom" not in error["message"]  # details stay in the log
    assert any("boom" in (r.exc_text or "") or "boom" in str(r.exc_info) for r in caplog.records)
