"""Request and response models: they document the JSON API in the OpenAPI spec (``/docs``, ``/openapi.json``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..config import MODALITIES
from ..data.readers import FINGERS

# An uploaded file as OpenAPI 3.1 spells a binary form part ("Try it out" in /docs shows a file picker).
BinaryFile = Annotated[
    bytes, WithJsonSchema({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"})
]

# ---------------------------------------------------------------------------- the form's text options
# Multipart fields are text, read leniently: a word in any case, with blanks around it. The patterns
# below say exactly which texts are accepted; ``options`` checks each field against its pattern, so
# the spec and the server agree. They use only ASCII classes, read alike by Python, ECMA and Rust.
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
_BLANKS = r"[ \t\n\r\f\v]*"


def _any_case(word: str) -> str:
    return "".join(f"[{ch.upper()}{ch}]" if ch.isalpha() else re.escape(ch) for ch in word)


def word_pattern(words: tuple[str, ...] | list[str], blank: bool = True) -> str:
    """One of ``words``, in any case, with blanks around it; or blanks alone when ``blank``."""
    choice = "|".join(_any_case(word) for word in words)
    return f"^{_BLANKS}(?:{choice}){'?' if blank else ''}{_BLANKS}$"


def _or_empty(pattern: str) -> str:
    """An anchored ``pattern``, or the empty text."""
    return f"^(?:{pattern[1:-1]})?$"


BLANK_PATTERN = f"^{_BLANKS}$"
BOOL_PATTERN = word_pattern(TRUE_WORDS + FALSE_WORDS)
FINGER_PATTERN = word_pattern(FINGERS)
MODALITY_PATTERN = _or_empty(word_pattern(MODALITIES, blank=False))  # empty: face; blanks alone are refused
PROBABILITY_PATTERN = rf"^{_BLANKS}(?:0(?:\.[0-9]*)?|1(?:\.0*)?|\.[0-9]+)?{_BLANKS}$"
# finger and fuse=true are for fingerprints: a face form (modality face, empty or left out) leaves them
# out. Said as two alternatives: with if/else, schemathesis 4.32 crashes on the file parts.
_FACE_OR_FINGERPRINT_FORM = [
    {
        "properties": {
            "modality": {"pattern": _or_empty(word_pattern(["face"], blank=False))},
            "finger": {"pattern": BLANK_PATTERN},
            "fuse": {"pattern": word_pattern(FALSE_WORDS)},
        }
    },
    {"required": ["modality"], "properties": {"modality": {"pattern": word_pattern(["fingerprint"], blank=False)}}},
]


# It only documents the request body: the body is parsed by ``uploads.parse_form`` (in memory, never
# stored), not validated against this model, and its text fields by ``options``.
class PredictForm(BaseModel):
    """The images to classify and the options of one prediction (a multipart form)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": _FACE_OR_FINGERPRINT_FORM})

    file: list[BinaryFile] = Field(
        min_length=1,  # a form without a file part is refused (422 missing_file), so the schema refuses it too
        description="one or more images (JPEG, PNG, BMP, GIF, WebP, TIFF); repeat the field for several. "
        "The content decides the format, not the name or content type.",
    )
    modality: str = Field(default="face", pattern=MODALITY_PATTERN, description=f"{' or '.join(MODALITIES)} (any case)")
    detect: str = Field(
        default="",
        pattern=BOOL_PATTERN,
        description="faces: true = find faces first; false = each image is one face crop (empty: the model's "
        "own setting, true for the bundled face model). Also 1/0, yes/no, on/off, in any case",
    )
    finger: str = Field(
        default="",
        pattern=FINGER_PATTERN,
        description=f"fingerprints: which finger every uploaded print is ({', '.join(FINGERS)}, any hand; empty: "
        "not known); its offset is removed and the per-finger calibration used (models listing 'fingers' in "
        "/api/v1/models). Only with modality=fingerprint",
    )
    fuse: str = Field(
        default="false",
        pattern=BOOL_PATTERN,
        description="fingerprints: true = the uploaded prints are one person's; the answer's 'person' fuses them "
        "(mean logit; a file uploaded twice counts once). Only with modality=fingerprint",
    )
    min_confidence: str = Field(
        default="",
        pattern=PROBABILITY_PATTERN,
        description="a number from 0 to 1: below this confidence the label is 'uncertain' "
        "(empty: the model's own level, chosen on validation)",
    )


def multipart_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a required ``multipart/form-data`` body described by ``model``,
    for a route that reads its body itself (passed as ``openapi_extra``)."""
    schema = model.model_json_schema()
    if "$defs" in schema:  # inlined in the operation, the schema has nowhere to keep its definitions
        raise ValueError(f"{model.__name__} must be flat: no nested models")
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def predict_body(max_files: int) -> dict[str, Any]:
    """The predict form's ``requestBody``, with the server's limit on files (more are refused, 422)."""
    body = multipart_body(PredictForm)
    body["content"]["multipart/form-data"]["schema"]["properties"]["file"]["maxItems"] = max_files
    return body


class FaceResult(BaseModel):
    box: list[int] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in pixels of the EXIF-rotated image")
    label: Literal["male", "female", "uncertain"] = Field(
        description="'uncertain' when confidence is below min_confidence"
    )
    p_female: float = Field(ge=0, le=1, description="calibrated probability of the dataset label 'female'")
    confidence: float = Field(
        ge=0,
        le=1,
        description="0.5 at the model's decision threshold to 1: the probability of the predicted label "
        "(threshold 0.5), or that probability with the log-odds shifted so the threshold sits at 0.5",
    )
    finger: str | None = Field(
        default=None, description="fingerprints: the finger given with the request (per-finger calibration), else null"
    )


class FileResult(BaseModel):
    filename: str
    faces: list[FaceResult] = Field(description="one entry per detected face (or the whole image); [] if none")
    error: str | None = Field(description="why this file could not be classified, else null")
    error_code: str | None = Field(default=None, description="machine-readable form of error")
    image_size: list[int] | None = Field(default=None, description="[width, height] after EXIF rotation")


class PersonResult(BaseModel):
    filenames: list[str] = Field(description="the uploads fused, each distinct file once")
    n: int = Field(ge=1, description="how many prints were fused")
    label: Literal["male", "female", "uncertain"]
    p_female: float = Field(ge=0, le=1, description="calibrated probability of 'female' for the person's mean logit")
    confidence: float = Field(ge=0, le=1)


class PredictResponse(BaseModel):
    results: list[FileResult]
    person: PersonResult | None = Field(
        default=None, description="fuse=true (fingerprints): all uploads as one person; else null"
    )
    model: dict[str, Any] = Field(
        description="the model used: name, modality, file name, labels, decision threshold, abstention level, "
        "per-finger threshold (the full summary is in /api/v1/models)"
    )
    elapsed_ms: float


class ModelSummary(BaseModel):
    modality: Literal["face", "fingerprint"]
    loaded: bool
    info: dict[str, Any] | None = Field(description="metadata summary; null if the model failed to load")
    card_url: str | None = Field(description="model card page, if one is installed")


class ModelsResponse(BaseModel):
    default: str
    models: list[ModelSummary]
    limits: dict[str, int]


class Health(BaseModel):
    status: Literal["ok"]
    models: list[str]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
