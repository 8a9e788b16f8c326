"""Images per second for local prediction and for Ray with 1, 2, ... workers, on the same folder.

    python scripts/bench_ray.py                       # 240 synthetic 640x480 photos, face model
    python scripts/bench_ray.py --images photos/ --workers 1,2,4 --address auto

The local number is the CLI's engine (batches through one classifier, two ONNX Runtime threads).
Each Ray number is one full pass through ``predict_dataset`` (actor start-up and model loading
included, cluster start-up not); the cluster's start is printed on its own. Needs the 'ray' extra.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2

from genderclass.data.readers import image_files
from genderclass.inference.bench import synthetic_photo
from genderclass.inference.classifier import GenderClassifier


def synthetic_folder(folder: Path, count: int) -> list[Path]:
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), synthetic_photo(seed=i))
    return image_files(folder)


def local_rate(files: list[Path], model: str | None, modality: str, detect: bool | None, batch: int) -> float:
    clf = GenderClassifier.load(model, modality=modality)
    clf.predict_batch([str(files[0])], detect=detect)  # warm-up, as a server would be
    start = time.perf_counter()
    for i in range(0, len(files), batch):
        clf.predict_batch([str(f) for f in files[i : i + batch]], detect=detect, batch_size=batch)
    return len(files) / (time.perf_counter() - start)


def ray_rate(
    files: list[Path], model: str | None, modality: str, detect: bool | None, batch: int, workers: int
) -> float:
    import ray.data

    from genderclass.inference.ray_engine import predict_dataset

    dataset = ray.data.from_items([{"path": str(f)} for f in files], override_num_blocks=max(1, 4 * workers))
    start = time.perf_counter()
    results = predict_dataset(dataset, model, modality, workers=workers, batch_size=batch, detect=detect)
    count = sum(batch.num_rows for batch in results.iter_batches(batch_format="pyarrow", batch_size=None))
    assert count == len(files)
    return len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", help="a folder of images (default: synthetic photos)")
    parser.add_argument("--count", type=int, default=240, help="synthetic photos to make")
    parser.add_argument("--model", help="model (default: the bundled one of --modality)")
    parser.add_argument("--modality", default="face")
    parser.add_argument("--no-detect", action="store_true", help="whole images are the crops")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts to time, comma-separated")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--address", help="a Ray cluster to join (default: a local one)")
    args = parser.parse_args()

    from genderclass.inference.ray_engine import ray_session

    detect = False if args.no_detect else None
    with tempfile.TemporaryDirectory() as tmp:
        files = image_files(Path(args.images)) if args.images else synthetic_folder(Path(tmp), args.count)
        rows = [{"engine": "local", "workers": 1, "images": len(files),
                 "images_per_s": round(local_rate(files, args.model, args.modality, detect, args.batch_size), 1)}]  # fmt: skip
        start = time.perf_counter()
        with ray_session(args.address):
            rows.append({"engine": "ray", "cluster_start_s": round(time.perf_counter() - start, 1)})
            for workers in (int(w) for w in args.workers.split(",")):
                rate = ray_rate(files, args.model, args.modality, detect, args.batch_size, workers)
                rows.append({"engine": "ray", "workers": workers, "images": len(files), "images_per_s": round(rate, 1)})
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
