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
        "  genderclass card --model runs/face --evaluation eval/metrics.json --out cards/face_card.md",
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


def cmd_card(args: argparse.Namespace) -> int:
    from ..inference.classifier import model_files
    from .card import write_card

    modality = args.modality or (None if args.model else _evaluated_modality(args.evaluation)) or "face"
    if args.model is not None and args.modality is not None:
        stored = model_files(args.model)[1].get("modality")
        if stored and stored != args.modality:
            raise ValueError(f"--modality {args.modality} given, but {args.model} is a {stored} model")
    md_path, html_path = write_card(args.model, args.out, modality=modality, evaluation_json=args.evaluation)
    print(json.dumps({"markdown": str(md_path), "html": str(html_path)}))
    return 0
