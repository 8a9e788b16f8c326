"""The one reader of an exported model's metadata (``NAME.json`` beside ``NAME.onnx``).

Export writes ``format_version``; fields were added over time, and a model exported before a field
existed does what that field's default says. :func:`migrate` fills those defaults in one place, so
the rest of the package reads every field as present instead of guessing with ``.get(key, default)``.
A file of a newer format than this package knows is refused rather than misread.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..config import LABELS, read_json

METADATA_VERSION = 1  # what export writes; files without format_version are version 0

# Fields older exports lack, with the value that describes what those models did.
DEFAULTS: dict[str, Any] = {
    "labels": list(LABELS),
    "threshold": 0.5,  # before thresholds were tuned for balanced accuracy
    "temperature": 1.0,  # before temperature scaling
    "min_confidence": 0.0,  # before abstention
    "fusion_temperature": None,  # not fitted on whole subjects: a mean keeps the per-print calibration
    "fusion_temperatures": [],  # before per-print-count fusion temperatures (fingerprints)
    "finger_known": None,  # before per-finger calibration (fingerprints)
    "confidence_scale": None,  # before confidence was centred on the threshold
    "evaluations": [],  # before evaluations on other data were stored with the model (card --store)
}


def migrate(metadata: Any, source: str | Path = "model metadata") -> dict[str, Any]:
    """A copy of ``metadata`` (the parsed JSON of ``source``) with every field a model of an older
    format lacks filled in; ValueError for metadata that is not a genderclass model's or is newer."""
    if not isinstance(metadata, dict):
        raise ValueError(f"{source} is not a JSON object")
    if not isinstance(metadata.get("preprocess"), dict):
        raise ValueError(f"{source} is not a genderclass model's metadata (no 'preprocess')")
    version = metadata.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{source} has an invalid format_version {version!r}")
    if version > METADATA_VERSION:
        raise ValueError(
            f"{source} has metadata format {version}, newer than this genderclass reads ({METADATA_VERSION}): "
            "upgrade genderclass"
        )
    migrated = dict(metadata)
    migrated.setdefault("modality", metadata["preprocess"].get("modality") or "face")
    for key, value in DEFAULTS.items():
        if migrated.get(key) is None:
            migrated[key] = copy.deepcopy(value)
    return migrated


def read_metadata(path: str | Path) -> dict[str, Any]:
    """A model's metadata JSON as stored, once :func:`migrate` has checked that it can be read (the
    classifier migrates it; ``info --json`` and the model card show what the file holds); ValueError
    when it is no valid model metadata."""
    try:
        metadata = read_json(path)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"model metadata {path} is not valid JSON: {exc}") from exc
    migrate(metadata, f"model metadata {path}")
    return metadata
