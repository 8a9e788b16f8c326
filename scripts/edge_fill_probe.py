"""How much a face model's answer depends on what lies beyond a chip's edge.

On a pre-cropped chip (UTKFace) the face crop reaches beyond the chip, and there the product
repeats the edge's pixels. In a photo the same place shows real hair, ears or background. This
script scores face models on chips of one split with that part filled several ways (the edge
repeated, mirrored, wrapped around, flat gray or black) and prints, per model and fill, how many
chips are classified right. A benchmark-style script: it prints numbers, it asserts nothing.

    python scripts/edge_fill_probe.py src/genderclass/models/face.onnx artifacts/candidate/face.onnx \\
        --split-csv runs/face-a2s4/split.csv --split val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

import genderclass.faces.crop as crop_module
from genderclass import GenderClassifier
from genderclass.data.readers import parse_utkface_name
from genderclass.data.split import read_split_csv
from genderclass.imageio import load_image
from genderclass.preprocess import crop_chip

FILLS = {
    "replicate": {"borderMode": cv2.BORDER_REPLICATE},
    "reflect101": {"borderMode": cv2.BORDER_REFLECT_101},
    "wrap": {"borderMode": cv2.BORDER_WRAP},
    "gray": {"borderMode": cv2.BORDER_CONSTANT, "borderValue": (128, 128, 128, 0)},
    "black": {"borderMode": cv2.BORDER_CONSTANT, "borderValue": (0, 0, 0, 0)},
}


class _FilledCv2:
    """``cv2`` as the crop module sees it, with every warp filling beyond the edge one way."""

    def __init__(self, fill: dict) -> None:
        self.fill = fill

    def __getattr__(self, name: str) -> object:
        return getattr(cv2, name)

    def warpAffine(self, src, matrix, size, flags=cv2.INTER_LINEAR, **_ignored):  # cv2's name and signature
        return cv2.warpAffine(src, matrix, size, flags=flags, **self.fill)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="face models (.onnx, metadata .json or export folder)")
    parser.add_argument("--split-csv", type=Path, required=True, help="a UTKFace training run's split.csv")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--fills", default=",".join(FILLS), help="comma-separated, of: " + ", ".join(FILLS))
    args = parser.parse_args()
    items = [path for path, split in read_split_csv(args.split_csv).items() if split == args.split]
    images = [load_image(path) for path in items]
    labels = [parse_utkface_name(Path(path).name).label for path in items]
    classifiers = [GenderClassifier.load(model) for model in args.models]
    print(f"{len(items)} {args.split} chips; right answers per fill:")
    print("fill\t" + "\t".join(args.models))
    for fill in args.fills.split(","):
        counts = []
        for clf in classifiers:
            crop_module.cv2 = _FilledCv2(FILLS[fill])
            try:
                crops = [crop_chip(rgb, clf.preprocess, clf.detector)[0].pixels for rgb in images]
            finally:
                crop_module.cv2 = cv2
            p_female = clf.probability(clf.logits(crops))
            counts.append(sum(int(p >= clf.threshold) == y for p, y in zip(p_female, labels)))
        print(fill + "\t" + "\t".join(f"{c} ({c / len(items):.2%})" for c in counts), flush=True)


if __name__ == "__main__":
    main()
