"""What one modality does differently from the other, in one object: :class:`Modality`.

Imports nothing of the package at load time (config imports this), and nothing heavy: a hook that
needs more imports it when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class Modality:
    """One modality's particulars. Code that behaves differently per modality asks this object
    (``modality_for(name).detects_faces``) instead of comparing the name."""

    name: str
    # ---- words
    images: str  # what the model classifies, in prose: "face photos"
    images_title: str  # the same as a sentence's subject: "Faces"
    unit: str  # one classified item in predict's summary: "face" or "print"
    # ---- reading and training defaults (TrainConfig.for_modality, PreprocessConfig.for_modality)
    reader_format: str  # the reader of the modality's own dataset (--format default)
    chip_formats: tuple[str, ...]  # reader formats whose images are pre-cropped chips (evaluate: crop mode "chip")
    preprocess_defaults: Mapping[str, Any]  # PreprocessConfig fields that differ from the dataclass's defaults
    train_defaults: Mapping[str, Any]  # TrainConfig fields (besides modality and format) that differ likewise
    # ---- preprocessing
    detects_faces: bool  # crops come from a face detector: --margin, alignment, chip cropping apply
    crops_beyond_edge: bool  # a crop can reach beyond the image's edge (the outside mask; --outside-fill)
    augment_geometries: tuple[str, ...]  # the --augment values it trains with (the first is the default)
    flip_tta: bool  # export: average the logits of the image and its mirror image by default
    # ---- measurement and decision
    tunes_threshold: bool  # the threshold is chosen on validation (for balanced accuracy); else 0.5
    headline_metric: str  # the test metric that sums a model up ("accuracy", "balanced_accuracy")
    balance_group: str  # the attribute --balance group balances within each label
    fuses_per_person: bool  # one person's images are fused (mean logit, its own temperatures)
    simulates_alterations: bool  # test metrics also on simulated alterations (obliteration, z-cut)
    fingers: tuple[str, ...]  # the finger names it knows (per-finger calibration); () for none
    # ---- model card text
    card_factors: tuple[str, ...]  # "Relevant factors"
    card_split_grouping: str  # how the test split is kept apart from training
    # "Caveats" of the modality, as str.format templates of: {dataset} (its name, linked), {children}
    # (the children's-faces paragraph with its age-band numbers), {test_accuracy}, {fused_accuracy} and
    # {test_subjects} (test numbers: per image, fused per subject, subjects)
    card_caveats: tuple[str, ...]
    card_ethics: tuple[str, ...]  # "Ethical Considerations" for models of this modality or trained on its data

    def default_crop_mode(self, fmt: str) -> str:
        """How ``evaluate`` crops labelled images of reader format ``fmt`` by default: "none" (the
        whole image), "chip" (a pre-cropped chip, cropped as in training) or "detect"."""
        if not self.detects_faces:
            return "none"
        return "chip" if fmt in self.chip_formats else "detect"
