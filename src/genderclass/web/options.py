"""The options of a prediction request: the text fields of the upload form, checked and parsed.

Multipart fields are text, so each option is parsed here; an option that is misspelt, misplaced or
out of range is refused (422) rather than silently replaced by its default. Each text is first held
to its pattern in the OpenAPI spec (``schemas``): what the spec calls valid is what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import MODALITIES
from ..inference.classifier import GenderClassifier
from .errors import ApiError
from .schemas import (
    BLANK_PATTERN,
    BOOL_PATTERN,
    FINGER_PATTERN,
    MODALITY_PATTERN,
    PROBABILITY_PATTERN,
    TRUE_WORDS,
    PredictForm,
)
from .uploads import Form, Upload

FILE_FIELD = "file"
PREDICT_FIELDS = tuple(PredictForm.model_fields)
# ``fullmatch`` of ``^...$`` is the schema's (ECMA) search: ``$`` only at the very end, not before a newline
_BLANK, _BOOL, _FINGER, _MODALITY, _PROBABILITY = (
    re.compile(pattern)
    for pattern in (BLANK_PATTERN, BOOL_PATTERN, FINGER_PATTERN, MODALITY_PATTERN, PROBABILITY_PATTERN)
)


@dataclass(frozen=True)
class PredictRequest:
    """A prediction request whose options are parsed, but for the two that depend on the model
    (``finger``: the fingers it knows) or come after it in the checks (``fuse``): still text."""

    files: list[Upload]
    modality: str
    detect: bool | None  # None: the model's own setting
    min_confidence: float | None  # None: the model's own level
    finger_text: str | None
    fuse_text: str | None


def parse_predict_request(form: Form, query: Mapping[str, str]) -> PredictRequest:
    """The request's options, checked in the order their errors are reported."""
    refuse_unknown_options(form.fields, query)
    modality = parse_modality(form.fields.get("modality"))
    detect = parse_bool(form.fields.get("detect"), "detect", default=None)
    min_confidence = parse_probability(form.fields.get("min_confidence"), "min_confidence")
    if not form.files:
        raise ApiError(
            422, "missing_file", f"no file uploaded: send one or more images in the multipart field '{FILE_FIELD}'"
        )
    return PredictRequest(
        form.files, modality, detect, min_confidence, form.fields.get("finger"), form.fields.get("fuse")
    )


def refuse_unknown_options(fields: Mapping[str, str], query: Mapping[str, str]) -> None:
    """A misspelt or misplaced option must not silently fall back to a default (the face model, say)."""
    expected = ", ".join(PREDICT_FIELDS)
    if unknown := [name for name in fields if name not in PREDICT_FIELDS]:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise ApiError(422, "unknown_field", f"unknown form field {names}: the fields are {expected}")
    if query:
        names = ", ".join(repr(name[:40]) for name in list(query)[:5])
        raise ApiError(422, "unknown_field", f"options go in the multipart form ({expected}), not the URL: {names}")


def parse_modality(raw: str | None) -> str:
    if not raw:
        return "face"
    if not _MODALITY.fullmatch(raw):
        raise ApiError(422, "invalid_modality", f"modality must be one of {', '.join(MODALITIES)}, not {raw[:40]!r}")
    return raw.strip().lower()


def parse_finger(raw: str | None, modality: str, clf: GenderClassifier) -> str | None:
    """The finger every print is, if given: only for a fingerprint model that knows that finger."""
    if raw is None or _BLANK.fullmatch(raw):
        return None
    if modality != "fingerprint":
        raise ApiError(422, "invalid_request", "finger is for fingerprints (modality=fingerprint)")
    if clf.finger_known is None:
        raise ApiError(422, "invalid_request", "this fingerprint model has no per-finger calibration; omit finger")
    known = list(clf.finger_known["offsets"])
    if not _FINGER.fullmatch(raw) or raw.strip().lower() not in known:
        raise ApiError(422, "invalid_request", f"finger must be one of {', '.join(known)}, not {raw[:40]!r}")
    return raw.strip().lower()


def parse_fuse(raw: str | None, modality: str) -> bool:
    fuse = bool(parse_bool(raw, "fuse", default=False))
    if fuse and modality != "fingerprint":
        raise ApiError(422, "invalid_request", "fuse is for fingerprints (modality=fingerprint)")
    return fuse


def parse_bool(raw: str | None, name: str, default: bool | None) -> bool | None:
    if raw is None:
        return default
    if not _BOOL.fullmatch(raw):
        raise ApiError(422, "invalid_request", f"{name} must be true or false, not {raw[:40]!r}")
    value = raw.strip().lower()
    return value in TRUE_WORDS if value else default


def parse_probability(raw: str | None, name: str) -> float | None:
    if raw is None:
        return None
    if not _PROBABILITY.fullmatch(raw):
        raise ApiError(422, "invalid_request", f"{name} must be a number from 0 to 1, not {raw[:40]!r}")
    return float(raw) if raw.strip() else None
