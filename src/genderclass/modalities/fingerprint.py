"""Fingerprint images: the whole print is the crop (gray, never detected); a person's prints can be
fused, and a print whose finger is named has its own calibration (inference/fingerprint_fusion.py)."""

from __future__ import annotations

import re
from types import MappingProxyType

from .base import Modality

FINGERS = ("thumb", "index", "middle", "ring", "little")


def finger_name(value: object) -> str | None:
    """A finger as given (a name in any case, with spaces around; a CSV cell), lowercased; None
    for nothing given (None or blank). Whether the name is known is the caller's check."""
    name = str(value or "").strip().lower()
    return name or None


_FINGER_IN_NAME = re.compile(rf"(?:^|[^a-z])({'|'.join(FINGERS)})_finger(?:[^a-z]|$)", re.IGNORECASE)


def finger_in_name(name: str) -> str | None:
    """The finger a file name states the SOCOFing way (``…_index_finger…``), anywhere in the name:
    ``100__M_Left_index_finger (1).png`` and ``scan_thumb_finger.jpg`` name theirs too."""
    match = _FINGER_IN_NAME.search(name)
    return match.group(1).lower() if match else None


FINGERPRINT = Modality(
    name="fingerprint",
    images="fingerprint images",
    images_title="Fingerprints",
    unit="print",
    reader_format="socofing",
    chip_formats=(),
    preprocess_defaults=MappingProxyType(
        {
            "input_size": 96,
            "channels": 1,
            "mean": (0.5,),
            "std": (0.25,),
            "detect": False,
            "margin": 0.0,
            "align": False,
            "chip_pad": 0.0,
        }
    ),
    train_defaults=MappingProxyType(
        {
            "out": "runs/fingerprint",
            "width": 0.5,
            "patience": 12,
            "balance": "class",  # about 4:1 male
            "near_duplicate_distance": 0,
            "aux_task": "finger",  # SOCOFing names the finger; other data trains without the head
            "monitor": "val_auc",  # the threshold is chosen at export, so rank quality picks the epoch
        }
    ),
    detects_faces=False,
    crops_beyond_edge=False,
    augment_geometries=("affine", "exact"),
    flip_tta=False,
    tunes_threshold=True,
    headline_metric="balanced_accuracy",
    balance_group="finger",
    fuses_per_person=True,
    simulates_alterations=True,
    fingers=FINGERS,
    card_factors=(
        "Hand and finger.",
        "Sensor, resolution, pressure and image quality; synthetic alterations (obliteration, central "
        "rotation, z-cut) where evaluated.",
        "The population the prints come from (age, ancestry, occupation), which a single dataset cannot span.",
    ),
    card_split_grouping=(
        "subject-disjoint: every print of a person falls in one split, so no test subject was seen in training"
    ),
    card_caveats=(
        "One population: {dataset} holds prints from a single population (African adults, per the dataset's "
        "paper) and one kind of sensor; accuracy on other populations, ages and sensors is unknown.",
        "The evaluation is subject-disjoint (no test person was seen in training). Per-image accuracy "
        "{test_accuracy}; fused over all prints of a person {fused_accuracy} on {test_subjects} test subjects.",
    ),
    card_ethics=(
        "Predicting sex from fingerprints is a research question with weak, population-dependent signal; it "
        "must not be presented as a biological fact about a person.",
    ),
)
