"""Evaluations a card renders: those stored in the model's metadata (key ``evaluations``) and one
``metrics.json`` given on the command line.

``genderclass card --evaluation metrics.json --store`` keeps an evaluation on other data (say the
face model on held-out CelebA crops) with the model: an entry ``{"name", "data", "metrics"}`` in its
metadata JSON, so that every card rendered from the metadata alone shows it, shipped cards
included. ``metrics`` is the metrics.json without what no card shows (the per-file lists, the
model's path and summary); ``data`` is what metrics.json records of the data measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import write_json
from .format import lookup, number

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


def default_name(evaluation: dict, eval_path: Path) -> str:
    """The evaluated data's folder name (a CSV manifest's folder), else the folder of the metrics.json."""
    data = lookup(evaluation, "data", "data")
    if isinstance(data, str) and data.strip():
        path = Path(data.strip())
        folder = path.parent if lookup(evaluation, "data", "format") == "csv" else path
        if folder.name not in ("", ".", ".."):
            return folder.name
    return eval_path.resolve().parent.name or "evaluation"


def with_evaluation(metadata: dict, entry: dict, source: str = "the model's metadata") -> dict:
    """A copy of ``metadata`` whose ``evaluations`` hold ``entry``: in the place of a stored one of the
    same name (any later duplicates dropped), else after the others."""
    entries = [] if metadata.get("evaluations") is None else metadata["evaluations"]  # None: as migrate reads it
    if not isinstance(entries, list):
        raise ValueError(f"{source} has an 'evaluations' that is not a list")
    same = [i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == entry["name"]]
    kept = [e for i, e in enumerate(entries) if i not in same]
    kept.insert(same[0] if same else len(kept), entry)
    return {**metadata, "evaluations": kept}


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


def store_evaluation(model: str | Path, evaluation_json: str | Path, name: str | None = None) -> tuple[Path, str]:
    """Store a metrics.json in ``model``'s metadata JSON (written whole or not at all) under ``name``
    (default: :func:`default_name`); returns the metadata's path and the name. Nothing is written when
    the evaluation is refused (another modality, no evaluation at all) or the name is empty."""
    from ..inference.classifier import model_files

    onnx_path, metadata = model_files(model)
    eval_path = Path(evaluation_json)
    evaluation = read_evaluation(eval_path, model_modality(metadata, "face"))
    if number(evaluation.get("n")) is None:
        raise ValueError(
            f"{eval_path} holds no evaluation (no 'n'): give a metrics.json written by 'genderclass evaluate'"
        )
    name = default_name(evaluation, eval_path) if name is None else " ".join(name.split())
    if not name:
        raise ValueError("--name is empty: give the stored evaluation a name")
    meta_path = onnx_path.with_suffix(".json")
    updated = with_evaluation(metadata, evaluation_entry(evaluation, name), f"model metadata {meta_path}")
    write_json(meta_path, updated)
    return meta_path, name
