"""Request and response models: they document the JSON API in the OpenAPI spec (``/docs``, ``/openapi.json``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from ..config import MODALITIES
from ..data.readers import FINGERS

# An uploaded file as OpenAPI 3.1 spells a binary form part ("Try it out" in /docs shows a file picker).
BinaryFile = Annotated[
    bytes, WithJsonSchema({"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"})
]


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # omitted means "the model's own setting", which no constant can say


# It only documents the request body: the body is parsed by ``uploads.parse_form`` (in memory, never
# stored), not validated against this model, and its text fields by the route.
class PredictForm(BaseModel):
    """The images to classify and the options of one prediction (a multipart form)."""

    model_config = ConfigDict(extra="forbid")

    file: list[BinaryFile] = Field(
        min_length=1,  # a form without a file part is refused (422 missing_file), so the schema refuses it too
        description="one or more images (JPEG, PNG, BMP, GIF, WebP, TIFF); repeat the field for several. "
        "The content decides the format, not the name or content type.",
    )
    modality: Literal[MODALITIES] = "face"
    detect: bool | SkipJsonSchema[None] = Field(
        default=None,
        description="faces: find faces first; false = each image is one face crop "
        "(omitted: the model's own setting, true for the bundled face model)",
        json_schema_extra=_without_default,
    )
    finger: Literal[("", *FINGERS)] = Field(
        default="",
        description="fingerprints: which finger every uploaded print is (any hand; empty: not known); its offset "
        "is removed and the per-finger calibration used (models listing 'fingers' in /api/v1/models)",
    )
    fuse: bool = Field(
        default=False,
        description="fingerprints: the uploaded prints are one person's; the answer's 'person' "
        "fuses them (mean logit; a file uploaded twice counts once)",
    )
    min_confidence: str = Field(
        default="",
        pattern=r"^\s*$|^(0(\.\d*)?|1(\.0*)?|\.\d+)$",
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
