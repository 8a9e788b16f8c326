"""Write one CSV manifest of several face datasets, to train on their mix (issue 25), and the list
of test files that keeps each dataset's held-out files out of training.

    python scripts/face_mix_manifest.py --out runs/face-mix/manifest.csv \
        --utkface ../shared/datasets/utkface --celeba ../shared/datasets/celeba_faces/labels.csv \
        --test-files src/genderclass/models/face.test_files.txt experiments/celeba_faces.test_files.txt \
        --val-files experiments/utkface.val_files.txt experiments/celeba_faces.val_files.txt

    genderclass train --data runs/face-mix/manifest.csv --format csv \
        --test-files runs/face-mix/manifest.test_files.txt --val-files runs/face-mix/manifest.val_files.txt ...

Rows: ``path,label,source,age,race`` (paths relative to the manifest; UTKFace's age and race as its
names give them, empty for CelebA). The test list (``manifest.test_files.txt`` beside it) holds the
files of every ``--test-files`` list, written as the manifest names them; ``manifest.val_files.txt``
those of the ``--val-files`` lists. Only file names and
labels are written, next to the run: no image is copied.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from genderclass.config import LABELS
from genderclass.data.readers import read_dataset


def _rows(data: str, fmt: str, source: str, out_dir: Path) -> list[dict[str, str]]:
    result = read_dataset(data, fmt)
    for line in result.skipped:
        print(f"{source}: skipped {line}", file=sys.stderr)
    rows = []
    for sample in result.samples:  # paths as the reader gives them: usable from the current folder
        path = Path(sample.path)
        rows.append(
            {
                "path": os.path.relpath(path.resolve(), out_dir.resolve()),
                "label": LABELS[sample.label],
                "source": source,
                "age": sample.attrs.get("age", ""),
                "race": sample.attrs.get("race", ""),
            }
        )
    return rows


def _listed_paths(rows: list[dict[str, str]], lists: list[str]) -> list[str]:
    """The manifest paths of the files the lists name (by relative path tail or bare name)."""
    wanted = set()
    for listed in lists:
        wanted |= {line.strip() for line in Path(listed).read_text().splitlines() if line.strip()}
    return sorted(
        row["path"]
        for row in rows
        if Path(row["path"]).name in wanted or "/".join(Path(row["path"]).parts[-2:]) in wanted
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the manifest to write (CSV)")
    parser.add_argument("--utkface", help="UTKFace folder")
    parser.add_argument("--celeba", help="CelebA crops' labels.csv")
    parser.add_argument("--test-files", nargs="*", default=[], help="lists of held-out files (*.test_files.txt)")
    parser.add_argument("--val-files", nargs="*", default=[], help="lists of validation files (for train --val-files)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, str]] = []
    if args.utkface:
        rows += _rows(args.utkface, "utkface", "utkface", out.parent)
    if args.celeba:
        rows += _rows(args.celeba, "csv", "celeba", out.parent)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "source", "age", "race"])
        writer.writeheader()
        writer.writerows(rows)
    for split, lists in (("test", args.test_files), ("val", args.val_files)):
        if lists:
            listed = _listed_paths(rows, lists)
            target = out.with_suffix(f".{split}_files.txt")
            target.write_text("".join(f"{p}\n" for p in listed))
            print(f"{target}: {len(listed)} {split} files", file=sys.stderr)
    print(f"{out}: {len(rows)} images", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
