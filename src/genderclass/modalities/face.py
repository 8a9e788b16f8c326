"""Face photos: a detector finds each face, which is aligned and cropped with a margin."""

from __future__ import annotations

from types import MappingProxyType

from .base import Modality

FACE = Modality(
    name="face",
    images="face photos",
    images_title="Faces",
    unit="face",
    reader_format="utkface",
    chip_formats=("utkface",),
    preprocess_defaults=MappingProxyType({}),  # the PreprocessConfig defaults are the face settings
    train_defaults=MappingProxyType(
        {
            "out": "runs/face",
            "aux_task": "age",  # UTKFace names the age; other data trains without the head
        }
    ),
    detects_faces=True,
    crops_beyond_edge=True,
    augment_geometries=("affine",),
    flip_tta=True,
    tunes_threshold=False,
    headline_metric="accuracy",
    balance_group="race",
    fuses_per_person=False,
    simulates_alterations=False,
    fingers=(),
    card_factors=(
        "Age: children's faces differ little by sex, so accuracy is expected to drop for the youngest ages.",
        "Race as annotated in the dataset (coarse categories, not self-reported) and skin tone.",
        "The labelled gender itself (the error rates of the two labels can differ) and its intersection with "
        "age and race.",
        "Image conditions: camera, resolution, compression, lighting, pose, expression, occlusion (glasses, "
        "masks, hair, make-up) and the face crop and alignment, which must match the model's preprocessing.",
    ),
    card_split_grouping="group-disjoint: exact and near-duplicate images (perceptual hash) are kept in one split",
    card_caveats=(
        "{children}",
        "Faces from other sources: the test split comes from the same collection as the training data "
        "({dataset}). Photos from other cameras, resolutions, lighting, poses, crops or face detectors differ "
        "from it; expect lower accuracy and worse calibration than reported here.",
    ),
    card_ethics=(),
)
