"""``genderclass card``: write a model card (Markdown + HTML) from a model's metadata (picked up by
``genderclass.cli.main``)."""

from __future__ import annotations

import argparse
import json

from ..cli.flags import add_modality_flag
from ..config import MODALITIES as MODALITY_CHOICES


def register(sub: argparse._SubParsersAction, add) -> None:
    p = add(
        sub,
        "card",
        "Write a model card (Markdown + HTML) from a model's stored metadata and measurements.",
        "  genderclass card\n"
        "  genderclass card --modality fingerprint\n"
        "  genderclass card --model runs/face --evaluation eval/metrics.json --out cards/face_card.md\n"
        "  genderclass card --model runs/face/export/face.onnx --evaluation eval-celeba/metrics.json --store "
        "--name celeba",
    )
    p.add_argument("--model", help="model .onnx/.json or run folder; the bundled model of --modality when omitted")
    add_modality_flag(p, "which bundled model; when omitted, that of the --evaluation's model, else face")
    p.add_argument("--evaluation", metavar="METRICS_JSON", help="metrics.json written by 'genderclass evaluate'")
    p.add_argument(
        "--out",
        metavar="FILE.md",
        help="Markdown output (or a folder); the HTML goes next to it. Omitted: <modality>_card.md next to the "
        "model, or in the current folder for a bundled model",
    )
    p.add_argument(
        "--store",
        action="store_true",
        help="first store the --evaluation in the --model's metadata JSON (replacing a stored evaluation of the "
        "same name), so that every card rendered from the metadata shows it; then write the card as usual",
    )
    p.add_argument(
        "--name",
        help="with --store: the stored evaluation's name on the card (default: the name of the evaluated data's "
        "folder, else of the folder holding the metrics.json)",
    )
    p.set_defaults(func=cmd_card)


def _evaluated_modality(evaluation_json: str | None) -> str | None:
    """The modality of the model a metrics.json evaluated (None if unknown): so the command every card
    advises, ``genderclass card --evaluation metrics.json``, renders the card of the model measured."""
    try:
        with open(evaluation_json or "", encoding="utf-8") as f:
            modality = (json.load(f).get("model") or {}).get("modality")
    except (OSError, ValueError, AttributeError):
        return None  # write_card reports a missing or unreadable file
    return modality if modality in MODALITY_CHOICES else None


def _store(args: argparse.Namespace) -> dict[str, str]:
    """``--store``: the --evaluation into the --model's metadata; what was stored, for the output line."""
    from .evaluations import store_evaluation

    if args.evaluation is None or args.model is None:
        raise ValueError("--store writes an evaluation into a model's metadata: give --evaluation and --model")
    meta_path, name = store_evaluation(args.model, args.evaluation, args.name)
    return {"metadata": str(meta_path), "name": name}


def cmd_card(args: argparse.Namespace) -> int:
    from ..inference.classifier import model_files
    from .card import write_card

    if args.name is not None and not args.store:
        raise ValueError("--name names a stored evaluation: give --store too")
    modality = args.modality or (None if args.model else _evaluated_modality(args.evaluation)) or "face"
    if args.model is not None and args.modality is not None:
        stored = model_files(args.model)[1].get("modality")
        if stored and stored != args.modality:
            raise ValueError(f"--modality {args.modality} given, but {args.model} is a {stored} model")
    result = {"stored": _store(args)} if args.store else {}
    evaluation = None if args.store else args.evaluation  # once stored, the metadata holds it
    md_path, html_path = write_card(args.model, args.out, modality=modality, evaluation_json=evaluation)
    print(json.dumps({"markdown": str(md_path), "html": str(html_path), **result}))
    return 0
