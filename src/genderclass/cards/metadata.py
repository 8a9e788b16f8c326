"""What a model's metadata says about its training dataset and modality."""

from __future__ import annotations

from ..modalities import Modality, modality_for
from .format import esc, lookup

DATASET_LINKS = {
    "utkface": ("UTKFace", "https://susanqq.github.io/UTKFace/"),
    "socofing": ("SOCOFing", "https://arxiv.org/abs/1807.10609"),
}


def dataset_info(metadata: dict) -> tuple[str, str | None]:
    """(display name, link) of the training dataset from its stored format."""
    fmt = str(lookup(metadata, "training", "format") or "").lower()
    if fmt in DATASET_LINKS:
        return DATASET_LINKS[fmt]
    return (f"the training data (reader format {fmt})" if fmt else "the training data"), None


def dataset_ref(metadata: dict) -> str:
    """The training dataset's name as card text, linked when its page is known."""
    name, link = dataset_info(metadata)
    return f"[{name}]({link})" if link else esc(name)


def modality_of(metadata: dict, evaluation: dict | None) -> Modality:
    """The modality: named by the metadata, else by the evaluation, else face; ValueError for a name
    that is no modality."""
    modality = metadata.get("modality") or lookup(metadata, "preprocess", "modality")
    if not modality and evaluation:
        modality = lookup(evaluation, "model", "modality")
    return modality_for(str(modality or "face"))
