"""The OpenAPI spec and the server agree on the predict form: every combination of option texts the
spec calls valid is answered 200, and every one it refuses is answered 422 (schemathesis'
positive_data_acceptance and negative_data_rejection checks, without the content of the files,
which no JSON schema can judge: the upload here is always a real image)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webcorpus import jpeg_bytes

from genderclass.data.readers import FINGERS

jsonschema_rs = pytest.importorskip("jsonschema_rs")

PREDICT = "/api/v1/predict"
IMAGE = jpeg_bytes(64, 48)
BLANKS = ["", " ", "\t", "\n", " \r\n ", "\x0b\x0c", "\u00a0", "\u2003", "\x1c", "\ufeff"]
WORDS = {
    "modality": ["face", "fingerprint", "FACE ", " Fingerprint\t", "fingerprints", "faces", "../face", "1"],
    "detect": ["true", "false", "1", "0", "yes", "no", "on", "off", "TRUE", " Off ", "2", "maybe", "1.0", "null"],
    "fuse": ["true", "false", "1", "0", "Yes", "NO", "\ton\n", "t", "-1", "none"],
    "finger": [*FINGERS, "Ring", " THUMB ", "toe", "thumbs", "left thumb", "1"],
    "min_confidence": ["0", "1", "0.5", ".5", "0.", "1.", "1.000", " 0.25 ", "1.5", "-0", "+0.5", "1e-1", "0x1", "nan"],
}


def _text(name: str) -> st.SearchStrategy[str]:
    listed = [w + b for w in WORDS[name] for b in ("", " ")] + BLANKS + [b + w for w in WORDS[name] for b in BLANKS]
    drawn = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)  # surrogates cannot be sent as UTF-8
    return st.one_of(st.sampled_from(WORDS[name][:6]), st.sampled_from(listed), drawn)  # the first words are valid


@pytest.fixture(scope="module")
def form_schema(client):
    body = client.get("/openapi.json").json()["paths"][PREDICT]["post"]["requestBody"]
    return body["content"]["multipart/form-data"]["schema"]


@pytest.fixture(scope="module")
def knows_every_finger(client) -> bool:
    """The spec lists every finger; a served fingerprint model without them refuses them (422)."""
    models = {m["modality"]: m for m in client.get("/api/v1/models").json()["models"]}
    info = (models.get("fingerprint") or {}).get("info") or {}
    return set(info.get("fingers") or []) == set(FINGERS)


def test_the_spec_limits_the_files_as_the_server_does(form_schema, web_settings):
    assert form_schema["properties"]["file"]["maxItems"] == web_settings.max_files
    assert form_schema["properties"]["file"]["minItems"] == 1


def test_spec_and_server_agree_on_the_options(client, form_schema, knows_every_finger):
    validator = jsonschema_rs.validator_for(form_schema)
    finger_pattern = form_schema["properties"]["finger"]["pattern"]
    answers: dict[int, int] = {}

    @settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(fields=st.fixed_dictionaries({}, optional={name: _text(name) for name in WORDS}))
    def agree(fields: dict[str, str]) -> None:
        named = jsonschema_rs.validator_for({"pattern": finger_pattern}).is_valid(
            fields.get("finger", "").strip() or "x"
        )
        if named and not knows_every_finger:  # valid by the spec, but this model has no per-finger calibration
            return
        valid = validator.is_valid({"file": ["image"], **fields})
        response = client.post(PREDICT, files=[("file", ("a.jpg", IMAGE, "image/jpeg"))], data=fields)
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        assert response.status_code == (200 if valid else 422), (fields, valid, response.text)

    agree()
    assert answers.get(200, 0) >= 50 and answers.get(422, 0) >= 50, answers  # both sides were tried
