"""Where the detector's landmarks fall in training face crops: the numbers behind
``genderclass.faces.crop.DETECTOR_LAYOUT``, from which ``hair_region`` places the brow line
that ``train --hair-erase`` erases above.

Each chip is cropped as training crops it (``crop_chip``: padded, detected, eyes levelled); the five
landmarks are taken where ``crop_face`` puts them (``landmarks_in_crop``). Prints the mean, spread and
5th/95th percentiles of the eyes', nose tip's and mouth corners' heights and the eye distance (units
of the box's longer side, heights from the crop's centre), and the hair region they give at the
crop's margin. A benchmark-style script: it prints numbers, it asserts nothing.

    python scripts/face_layout_probe.py ../shared/datasets/utkface --format utkface --n 500
    python scripts/face_layout_probe.py ../shared/datasets/celeba_faces/labels.csv --format csv --n 500
"""

from __future__ import annotations

import argparse

import numpy as np

from genderclass.config import PreprocessConfig
from genderclass.data.readers import read_dataset
from genderclass.faces import crop
from genderclass.faces.detect import default_detector
from genderclass.imageio import load_image
from genderclass.preprocess import crop_chip


def measure(paths: list[str], cfg: PreprocessConfig) -> dict[str, np.ndarray]:
    """Per chip whose face the detector found: the eyes', nose tip's and mouth's heights and the eye distance."""
    detector = default_detector()
    rows = []
    for path in paths:
        chip, found = crop_chip(load_image(path), cfg, detector)
        if found:
            marks = crop.landmarks_in_crop(chip.face, cfg.align)
            rows.append((marks[:2, 1].mean(), marks[2, 1], marks[3:, 1].mean(), abs(marks[1, 0] - marks[0, 0])))
    return dict(zip(("eyes", "nose", "mouth", "eye_distance"), np.array(rows).T, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="dataset folder or CSV manifest")
    parser.add_argument("--format", default="utkface", choices=("utkface", "folder", "csv"))
    parser.add_argument("--n", type=int, default=500, help="chips drawn at random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, default=PreprocessConfig().margin)
    args = parser.parse_args()
    samples = read_dataset(args.data, args.format).samples
    chosen = np.random.default_rng(args.seed).choice(len(samples), min(args.n, len(samples)), replace=False)
    cfg = PreprocessConfig(margin=args.margin)
    found = measure([samples[i].path for i in sorted(chosen)], cfg)
    print(f"{len(found['eyes'])} of {len(chosen)} chips with a face found")
    for name, values in found.items():
        p5, p95 = np.percentile(values, [5, 95])
        print(f"{name:13s} mean {values.mean():+.3f}  sd {values.std():.3f}  5-95% {p5:+.3f} .. {p95:+.3f}")
    layout = crop.FaceLayout(**{name: float(values.mean()) for name, values in found.items()})
    print(f"hair region at margin {args.margin} from these means: {crop.hair_region(args.margin, layout)}")
    print(f"hair region at margin {args.margin} as trained (DETECTOR_LAYOUT): {crop.hair_region(args.margin)}")


if __name__ == "__main__":
    main()
