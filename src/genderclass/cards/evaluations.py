"""Evaluations a card renders: those stored in the model's metadata (key ``evaluations``) and one
``metrics.json`` given on the command line.

An evaluation on other data (say the face model on held-out CelebA crops) kept with the model is an
entry ``{"name", "data", "metrics"}`` in its metadata JSON, so that every card rendered from the
metadata alone shows it, shipped cards included. ``metrics`` is the metrics.json without what no
card shows (the per-file lists, the model's path and summary); ``data`` is what metrics.json records
of the data measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .format import lookup

Evaluation = tuple[str, dict]  # (name on the card, the metrics as metrics.json holds them)

PER_FILE_KEYS = ("predictions", "unreadable", "no_face")  # one entry per file: bulky, never on a card
MODEL_KEYS = ("name", "modality")  # of the evaluated model's summary, what a card shows or checks


def stored_evaluations(metadata: dict) -> list[Evaluation]:
    """The evaluations stored in ``metadata``, in order (entries without a name or metrics are skipped)."""
    entries = metadata.get("evaluations")
    if not isinstance(entries, list):
        return []
    return [
        (entry["name"], entry["metrics"])
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("metrics"), dict)
    ]


def card_metrics(evaluation: dict) -> dict:
    """The part of a metrics.json that a card renders: all of it but the per-file lists, the data
    record (stored beside it) and of the model's summary only its name and modality."""
    metrics = {key: value for key, value in evaluation.items() if key not in (*PER_FILE_KEYS, "data")}
    if isinstance(evaluation.get("model"), dict):
        metrics["model"] = {key: evaluation["model"][key] for key in MODEL_KEYS if key in evaluation["model"]}
    return metrics


def evaluation_entry(evaluation: dict, name: str) -> dict:
    """The metadata entry that stores ``evaluation`` (a parsed metrics.json) under ``name``."""
    entry: dict[str, Any] = {"name": name}
    if isinstance(evaluation.get("data"), dict) and evaluation["data"]:
        entry["data"] = evaluation["data"]  # the data, its format and the files chosen, as recorded
    entry["metrics"] = card_metrics(evaluation)
    return entry


def read_evaluation(path: str | Path, model_modality: str) -> dict:
    """A metrics.json written by ``genderclass evaluate``; FileNotFoundError when missing, ValueError
    when it is no JSON object or evaluates a model of another modality."""
    eval_path = Path(path)
    if not eval_path.is_file():
        raise FileNotFoundError(f"evaluation file not found: {eval_path}")
    try:
        evaluation = json.loads(eval_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"evaluation {eval_path} is not valid JSON: {exc}") from None
    if not isinstance(evaluation, dict):
        raise ValueError(f"evaluation {eval_path} is not a JSON object")
    eval_modality = lookup(evaluation, "model", "modality")
    if eval_modality and eval_modality != model_modality:
        raise ValueError(f"{eval_path} evaluates a {eval_modality} model, but the card is for a {model_modality} model")
    return evaluation


def model_modality(metadata: dict, default: str) -> str:
    """The modality the metadata names (``default`` when it names none)."""
    return metadata.get("modality") or lookup(metadata, "preprocess", "modality") or default
