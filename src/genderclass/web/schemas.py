"""Response models: they document the JSON API in the OpenAPI spec (``/docs``, ``/openapi.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


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
